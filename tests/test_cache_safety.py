"""The cache cannot be turned against its user: a cache file that is a link to /dev/zero, a FIFO
or a huge file is a miss, never a hang or an exhausted memory; a cache directory that is a
symlink, another user's, or writable by others is not used at all, and the run says so once."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from imagescope.model import Entry, EntryKind
from imagescope.store import cache as cache_module
from imagescope.store.cache import LayerCache

from .cli import CliResult, run_cli
from .hostile import time_limit

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "fixtures" / "example-image.tar"
DIFF_ID = "sha256:" + "ab" * 32
ENTRIES = [Entry("etc/hosts", EntryKind.FILE, size=12, digest=b"\1" * 16)]


def stored(tmp_path: Path) -> tuple[LayerCache, Path]:
    cache = LayerCache(tmp_path / "c")
    assert cache.put(DIFF_ID, ENTRIES)
    (path,) = [p for p in (tmp_path / "c").iterdir() if p.suffix == ".layer"]
    assert cache.get(DIFF_ID) == ENTRIES
    return cache, path


def test_a_link_to_dev_zero_is_a_miss_at_once(tmp_path: Path) -> None:
    cache, path = stored(tmp_path)
    path.unlink()
    path.symlink_to("/dev/zero")
    with time_limit(5):
        assert cache.get(DIFF_ID) is None


def test_a_fifo_is_a_miss_not_a_wait(tmp_path: Path) -> None:
    cache, path = stored(tmp_path)
    path.unlink()
    os.mkfifo(path)
    with time_limit(5):
        assert cache.get(DIFF_ID) is None


def test_a_file_past_the_bound_is_a_miss(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache, path = stored(tmp_path)
    monkeypatch.setattr(cache_module, "MAX_FILE_BYTES", path.stat().st_size - 1)
    assert cache.get(DIFF_ID) is None
    monkeypatch.setattr(cache_module, "MAX_FILE_BYTES", path.stat().st_size)
    assert cache.get(DIFF_ID) == ENTRIES


def test_directories_it_makes_are_private(tmp_path: Path) -> None:
    root = tmp_path / "xdg"
    cache = LayerCache(root / "imagescope" / "layers" / "v1")
    old = os.umask(0o002)  # a group-writable umask must not make the cache untrusted
    try:
        assert cache.put(DIFF_ID, ENTRIES)
    finally:
        os.umask(old)
    for directory in (root / "imagescope", root / "imagescope" / "layers", cache.directory):
        assert directory.stat().st_mode & 0o777 == 0o700, directory
    assert cache.untrusted() is None


def run(cache_home: Path) -> CliResult:
    return run_cli("inspect", str(EXAMPLE), "--format", "json",
                   env={"XDG_CACHE_HOME": str(cache_home)})


def untrustworthy(kind: str, home: Path) -> Path:
    """A cache root whose imagescope directory is `kind`; returns that directory."""
    directory = home / "imagescope"
    if kind == "symlink":
        elsewhere = home.parent / f"{home.name}-elsewhere"
        elsewhere.mkdir(mode=0o700)
        directory.symlink_to(elsewhere)
    else:
        directory.mkdir(mode=0o700)
        if kind == "writable":
            directory.chmod(0o777)
        else:
            os.chown(directory, 12345, 12345)
    return directory


@pytest.mark.parametrize("kind, reason", [("symlink", "is a symlink"),
                                          ("writable", "is writable by others (mode 777)"),
                                          ("foreign", "belongs to another user (uid 12345)")])
def test_an_untrustworthy_cache_is_not_used_and_said_so_once(tmp_path: Path, kind: str,
                                                             reason: str) -> None:
    if kind == "foreign" and os.geteuid() != 0:
        pytest.skip("making a directory another user's needs root")
    home = tmp_path / "home"
    home.mkdir()
    directory = untrustworthy(kind, home)
    for _ in range(2):  # a second run would read what the first stored, if it stored anything
        result = run(home)
        assert result.returncode == 0, result.stderr
        assert result.stderr.splitlines() == [
            (f"imagescope: warning: not using the cache at {directory / 'layers' / 'v1'}: "
            f"{directory} {reason}")]
    target = directory.resolve() if kind == "symlink" else directory
    assert list(target.rglob("*")) == []  # nothing read, nothing written
    if kind == "symlink":
        shutil.rmtree(home.parent / f"{home.name}-elsewhere")


def test_the_fingerprint_covers_the_compiled_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    """Entries made by another build of imagescope/layer/_tarscan.c are a miss, not a stale answer."""
    with_scan = cache_module.fingerprint()
    with_report = cache_module.report_fingerprint()
    monkeypatch.setenv("IMAGESCOPE_TAR_SCAN", "python")
    without = cache_module.fingerprint()
    without_report = cache_module.report_fingerprint()
    assert (with_scan == without) == (with_report == without_report)
    if sys.modules.get("imagescope.layer._tarscan") is None:
        assert with_scan == without  # no compiled scan here: both are the Python reader's
    else:
        assert with_scan != without
