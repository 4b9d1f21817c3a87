"""The HTML report opened in a real browser (headless Chromium): a real run's page loads
with every image decoded, no console error and visible content, and a screenshot shows it.

Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``:
JSON messages ending in a NUL byte, the browser reading fd 3 and writing fd 4), so the
check needs the browser and the standard library only: no driver, no websocket client.
The checker itself is tested on pages broken on purpose, so a check that cannot fail would
show here. ``.ci/run`` installs Debian's ``chromium`` when it is absent; without it (and
no root to install it) these tests skip, saying so.
"""

from __future__ import annotations

import base64
import fcntl
import io
import json
import os
import select
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import REPO, run_cli, write_study
from matplotlib.image import imread

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
BROWSER = next((found for name in BROWSERS if (found := shutil.which(name))), None)
pytestmark = pytest.mark.skipif(
    BROWSER is None, reason="no Chromium on PATH (.ci/run installs Debian's chromium package when run as root)")

TIMEOUT = 60.0
"""Seconds a browser answer may take before the check fails: a ceiling for a hang, not a timing."""
PAGE_FACTS = """JSON.stringify({
  text: document.body ? document.body.innerText.trim().length : 0,
  images: Array.from(document.images).map(i => ({alt: i.alt, complete: i.complete, width: i.naturalWidth})),
})"""
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
"""A valid 1 x 1 PNG, as base64."""


@dataclass
class PageCheck:
    """What the browser saw on a page: console errors and uncaught exceptions, images
    that did not decode, how much text shows, and a screenshot (PNG bytes)."""

    errors: list[str] = field(default_factory=list)
    broken_images: list[str] = field(default_factory=list)
    text_length: int = 0
    screenshot: bytes = b""

    def problems(self) -> list[str]:
        """Everything wrong with the page, one line each; empty for a good page."""
        found = [f"console error: {e}" for e in self.errors]
        found += [f"broken image: {alt or '(no alt text)'}" for alt in self.broken_images]
        if self.text_length == 0:
            found.append("empty page: no visible text")
        if not self.screenshot or _one_colour(self.screenshot):
            found.append("empty page: the screenshot is blank")
        return found


class DevTools:
    """One headless Chromium, spoken to over ``--remote-debugging-pipe``."""

    def __init__(self, profile: Path) -> None:
        profile.mkdir(parents=True, exist_ok=True)
        self._log_path = profile / "stderr.log"  # a file, not a pipe: an unread pipe could fill and stall it
        self._log = open(self._log_path, "wb")  # noqa: SIM115 (closed in close())
        to_browser, self._browser_in = os.pipe()
        self._browser_out, from_browser = os.pipe()

        def give_pipes() -> None:
            """In the child, before exec: the pipes on the fds Chromium expects, inheritable.
            Moved above 4 first, as a pipe may already sit on fd 3 or 4 (with close-on-exec)."""
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_browser, from_browser)]
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)

        self.process = subprocess.Popen(
            [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--no-first-run", "--hide-scrollbars", "--remote-debugging-pipe", f"--user-data-dir={profile}"],
            preexec_fn=give_pipes, close_fds=False,  # noqa: PLW1509 (the test starts no thread; it only dups fds)
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._log,
        )
        os.close(to_browser)
        os.close(from_browser)
        self._next = 0
        self._buffer = b""
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        """Send a command and return its result; events that arrive meanwhile are kept."""
        self._next += 1
        message = {"id": self._next, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._browser_in, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._receive()
            if reply.get("id") == self._next:
                assert "error" not in reply, f"{method}: {reply['error']}"
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str) -> dict[str, Any]:
        """The first event named ``method``, received now or earlier."""
        while True:
            for event in self.events:
                if event.get("method") == method:
                    return event
            self.events.append(self._receive())

    def _receive(self) -> dict[str, Any]:
        deadline = time.monotonic() + TIMEOUT
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._browser_out], [], [], max(deadline - time.monotonic(), 0))
            assert ready, f"Chromium did not answer within {TIMEOUT:g} s"
            chunk = os.read(self._browser_out, 1 << 20)
            assert chunk, f"Chromium ended: {self._log_path.read_text(errors='replace')[-2000:]}"
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def close(self) -> None:
        try:
            os.write(self._browser_in, json.dumps({"id": 0, "method": "Browser.close"}).encode() + b"\0")
            self.process.wait(timeout=TIMEOUT)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        finally:
            os.close(self._browser_in)
            os.close(self._browser_out)
            self._log.close()


def check_page(page: Path, profile: Path) -> PageCheck:
    """Open ``page`` in headless Chromium, wait until it has loaded (images included), and
    report what a reader would notice: errors, broken images, no content."""
    browser = DevTools(profile)
    try:
        target = browser.call("Target.createTarget", url="about:blank")["targetId"]
        session = browser.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            browser.call(f"{domain}.enable", session)
        browser.call("Emulation.setDeviceMetricsOverride", session, width=1200, height=900,
                     deviceScaleFactor=1, mobile=False)
        browser.call("Page.navigate", session, url=page.resolve().as_uri())
        browser.wait_for("Page.loadEventFired")
        facts = json.loads(browser.call("Runtime.evaluate", session, expression=PAGE_FACTS,
                                        returnByValue=True)["result"]["value"])
        shot = browser.call("Page.captureScreenshot", session, format="png", captureBeyondViewport=True)
        return PageCheck(
            errors=_errors(browser.events),
            broken_images=[i["alt"] for i in facts["images"] if not i["complete"] or i["width"] == 0],
            text_length=facts["text"], screenshot=base64.b64decode(shot["data"]),
        )
    finally:
        browser.close()


def _errors(events: list[dict[str, Any]]) -> list[str]:
    """Console errors, uncaught exceptions and failed loads among the browser's events."""
    found = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            found.append(details.get("exception", {}).get("description") or details.get("text", "exception"))
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            found.append(" ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            found.append(params["entry"].get("text", ""))
    return found


def _one_colour(png: bytes) -> bool:
    """Whether a screenshot is a single colour: nothing was drawn."""
    pixels = imread(io.BytesIO(png), format="png")
    return bool(np.all(pixels == pixels[0, 0]))


def test_the_checker_finds_a_broken_image_a_console_error_and_an_exception(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text(f"""<!doctype html><html><body><h1>A report</h1>
        <img src="data:image/png;base64,{PNG}" alt="fine">
        <img src="data:image/png;base64,AAAAbroken" alt="cut short">
        <img src="missing.png" alt="not there">
        <script>console.error("drawn wrong"); null.boom;</script></body></html>""")
    check = check_page(page, tmp_path / "profile")
    assert check.broken_images == ["cut short", "not there"]
    assert any("drawn wrong" in e for e in check.errors)
    assert any("TypeError" in e for e in check.errors)  # the uncaught exception
    assert any("ERR_FILE_NOT_FOUND" in e for e in check.errors)  # the missing file's failed load
    assert "empty page: no visible text" not in check.problems()


def test_the_checker_finds_an_empty_page_and_passes_a_good_one(tmp_path):
    (tmp_path / "empty.html").write_text("<!doctype html><html><body></body></html>")
    empty = check_page(tmp_path / "empty.html", tmp_path / "profile")
    assert empty.problems() == ["empty page: no visible text", "empty page: the screenshot is blank"]
    (tmp_path / "good.html").write_text(f'<!doctype html><html><body><h1>Fine</h1><img src="data:image/png;base64,{PNG}" alt="dot"></body></html>')
    assert check_page(tmp_path / "good.html", tmp_path / "profile").problems() == []


@pytest.mark.mpi
def test_a_real_runs_report_shows_in_chromium_with_every_plot_and_no_error(tmp_path):
    """A random search with failures (so the failures table shows too), reported and opened."""
    study = write_study(tmp_path, f"""
        [study]
        name = "browser"
        budget = 16
        objective = "loss"
        output = "{tmp_path / 'out'}"

        [model]
        python = "{REPO / 'tests' / 'models' / 'report_models.py'}:picky"

        [algorithm]
        name = "random"
        seed = 3

        [space]
        x = {{ type = "float", low = 0.0, high = 1.0 }}
        lr = {{ type = "float", low = 1e-4, high = 1e-1, log = true }}
        act = {{ type = "categorical", choices = ["relu", "bad"] }}
        epochs = 3
    """)
    assert (ran := run_cli("run", str(study), "-n", "3", "--progress", "off", cwd=tmp_path)).returncode == 0, ran.stderr
    assert (made := run_cli("report", str(tmp_path / "out"), cwd=tmp_path)).returncode == 0, made.stderr
    page = tmp_path / "out" / "report" / "index.html"
    check = check_page(page, tmp_path / "profile")
    (tmp_path / "out" / "report" / "screenshot.png").write_bytes(check.screenshot)
    assert check.problems() == []
    assert page.read_text().count("<img ") == 3  # best so far, parameters, workers: all decoded
    assert 'id="failures"' in page.read_text()
    height, width = imread(tmp_path / "out" / "report" / "screenshot.png").shape[:2]
    assert width == 1200 and height > 900  # the whole page, beyond the first screen
