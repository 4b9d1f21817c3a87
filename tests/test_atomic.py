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
