"""atomic_write and atomic_path: the target holds the old content or the new, never half,
and a failed write leaves no temporary file behind."""

from __future__ import annotations

import os
import stat

import pytest

from mexplore.store import atomic
from mexplore.store.atomic import atomic_path, atomic_write


def test_the_target_holds_the_new_content(tmp_path):
    target = tmp_path / "status.json"
    assert atomic_write(target, "first") == target
    atomic_write(target, b"second \xff")
    assert target.read_bytes() == b"second \xff"
    atomic_write(target, "d\u00e9j\u00e0")
    assert target.read_text(encoding="utf-8") == "d\u00e9j\u00e0"
    assert os.listdir(tmp_path) == ["status.json"]


def test_a_library_writes_the_temporary_path_which_then_becomes_the_target(tmp_path):
    target = tmp_path / "results.csv"
    with atomic_path(target) as partial:
        assert partial.parent == tmp_path and partial.name.startswith(".results.csv.")
        assert not partial.name.endswith(".csv")  # a *.csv glob never sees it
        partial.write_text("id\n1\n")
        assert not target.exists()
    assert target.read_text() == "id\n1\n"
    assert os.listdir(tmp_path) == ["results.csv"]


def test_two_writers_never_share_a_temporary_name(tmp_path):
    target = tmp_path / "study.toml"
    with atomic_path(target) as one, atomic_path(target) as two:
        assert one != two
        one.write_text("one")
        two.write_text("two")
    assert target.read_text() == "one"  # the last to finish wins, whole


def test_a_failure_while_writing_leaves_the_old_content_and_no_temporary_file(tmp_path):
    target = tmp_path / "results.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="disk full"), atomic_path(target) as partial:
        partial.write_text("half a ta")
        raise RuntimeError("disk full")
    with pytest.raises(TypeError):
        atomic_write(target, object())  # data that cannot be written
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["results.csv"]


def test_a_failed_rename_leaves_the_old_content_and_no_temporary_file(tmp_path, monkeypatch):
    target = tmp_path / "index.html"
    target.write_text("old")

    def refuse(source, destination):
        raise PermissionError(13, "Permission denied", str(destination))

    monkeypatch.setattr(atomic.os, "replace", refuse)
    with pytest.raises(PermissionError):
        atomic_write(target, "new")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["index.html"]


def test_a_directory_that_refuses_fsync_does_not_fail_the_write(tmp_path, monkeypatch):
    real = os.fsync

    def no_directories(fd):
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(22, "Invalid argument")
        real(fd)

    monkeypatch.setattr(atomic.os, "fsync", no_directories)
    assert atomic_write(tmp_path / "record.toml", "x = 1\n").read_text() == "x = 1\n"


def test_a_run_removes_only_the_temporary_files_of_writers_that_no_longer_run(tmp_path):
    """A kill -9 mid-write leaves ``.<name>.part-<pid>-<tag>``; a run removes those of dead
    writers, never a live writer's, a folder, or a user's file that merely looks alike."""
    dead = 2 ** 22 + 12345  # above the kernel's default pid_max: no process has it
    abandoned = tmp_path / f".results.csv.part-{dead}-0a1b2c3d"
    kept = [tmp_path / f".status.json.part-{os.getpid()}-8c9d0e1f",  # a live writer's
            tmp_path / f".backup.part-{dead}-2024",  # a user's: not a tag of 8 hex digits
            tmp_path / f".notes.part-{dead}-draft"]
    for path in (abandoned, *kept):
        path.write_text("x")
    folder = tmp_path / f".old.part-{dead}-4e5f6a7b"
    folder.mkdir()
    atomic.remove_abandoned(tmp_path)
    assert not abandoned.exists() and all(path.exists() for path in kept) and folder.is_dir()
