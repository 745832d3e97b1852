"""Files of an image written out: into a directory, or as a tar on a stream.

Rules for a directory (`to_directory`):
- A name is written at its image path under DIR (`/etc/passwd` → `DIR/etc/passwd`).
- Nothing is written outside DIR: image paths are normalised (no `..`), every directory on the
  way is opened without following a symlink (one in the way, in DIR before the export or
  made by it, is an error), and a file is created anew: whatever is at its name (a symlink, a
  hardlink to a file outside DIR) is unlinked, never written through.
- Symlinks are written as symlinks, their targets as the image holds them, never followed.
- Hardlinks are written as copies of the content they reach.
- Device nodes and FIFOs are refused (skipped, and listed in the result).
- Permission bits are kept (setuid, setgid and sticky bits are not); owners only with
  `same_owner`.
"""

from __future__ import annotations

import errno
import os
import stat
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

from imagescope.analysis.overlay import Visible
from imagescope.errors import OutputError
from imagescope.files import ImageFiles
from imagescope.model import Entry, EntryKind

_PERMISSIONS = 0o777


@dataclass(slots=True)
class Exported:
    """What an export wrote: counts, and the names it refused."""

    files: int = 0
    directories: int = 0
    symlinks: int = 0
    bytes: int = 0
    refused: list[str] = field(default_factory=list)

    def count(self, name: Visible) -> str:
        """Count `name` as what it will be written as (`_kind`), or as refused."""
        kind = _kind(name)
        if kind == "special":
            self.refused.append(f"/{name.path}")
        elif kind == "dir":
            self.directories += 1
        elif kind == "symlink":
            self.symlinks += 1
        else:
            assert name.content is not None
            self.files += 1
            self.bytes += name.content.size
        return kind


def to_directory(files: ImageFiles, names: list[Visible], target: str, *,
                 same_owner: bool = False) -> Exported:
    """Write `names` (parents before children) under directory `target`."""
    done = Exported()
    try:
        root = os.open(target, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise OutputError(f"cannot write to {target}: {exc.strerror or exc}") from None
    try:
        contents: list[tuple[Visible, Callable[[bytes], None]]] = []
        for name in names:
            kind = done.count(name)
            if kind == "special":
                continue
            parent, base = _parent(root, name.path, target)
            try:
                if kind == "dir":
                    if base:
                        _ensure_dir(parent, base, target, name.path)
                elif kind == "symlink":
                    assert name.entry is not None
                    _replace_with_symlink(parent, base, name.entry.link_target or "")
                else:
                    os.close(_create(parent, base))
                    contents.append((name, _appender(root, name.path)))
            except OSError as exc:
                raise OutputError(f"cannot write {os.path.join(target, name.path)}: "
                                  f"{exc.strerror or exc}") from None
            finally:
                if parent != root:
                    os.close(parent)
        try:
            files.read_all(contents)
        except OSError as exc:  # (writing; a read's errors are ImagescopeErrors)
            raise OutputError(f"cannot write under {target}: {exc.strerror or exc}") from None
        for name in reversed(names):  # modes last: a read-only directory still gets its files
            if _kind(name) in ("special", "symlink"):
                continue
            _set_mode(root, name, same_owner, target)
    finally:
        os.close(root)
    return done


def to_tar(files: ImageFiles, names: list[Visible], stream: BinaryIO) -> Exported:
    """Write `names` as a tar (PAX) to `stream`: directories, symlinks and empty files first,
    then each file as its content is read, one pass per layer."""
    done = Exported()
    contents: list[tuple[Visible, Callable[[bytes], None]]] = []
    for name in names:
        kind = done.count(name)
        if kind == "special":
            continue
        info = _tar_info(name, kind)
        if kind == "file" and info.size:
            contents.append((name, _TarMember(stream, info).feed))
            continue
        _write(stream, info.tobuf(tarfile.PAX_FORMAT))
    _write_all(files, contents)
    _write(stream, b"\0" * (2 * tarfile.BLOCKSIZE))
    try:
        stream.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise OutputError(f"cannot write to stdout: {exc.strerror or exc}") from None
    return done


def _write(stream: BinaryIO, data: bytes) -> None:
    try:
        stream.write(data)
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise OutputError(f"cannot write to stdout: {exc.strerror or exc}") from None


def _write_all(files: ImageFiles, contents: list[tuple[Visible, Callable[[bytes], None]]]
               ) -> None:
    try:
        files.read_all(contents)
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise OutputError(f"cannot write to stdout: {exc.strerror or exc}") from None


class _TarMember:
    """A member's header written before its first bytes, its padding after the last."""

    def __init__(self, stream: BinaryIO, info: tarfile.TarInfo) -> None:
        self._stream = stream
        self._info = info
        self._left = info.size

    def feed(self, data: bytes) -> None:
        if self._left == self._info.size:
            self._stream.write(self._info.tobuf(tarfile.PAX_FORMAT))
        self._stream.write(data)
        self._left -= len(data)
        if self._left == 0:
            self._stream.write(b"\0" * (-self._info.size % tarfile.BLOCKSIZE))


def _kind(name: Visible) -> str:
    if name.is_dir:
        return "dir"
    entry = name.entry
    if entry is not None and entry.kind is EntryKind.SYMLINK:
        return "symlink"
    if name.content is not None and name.content.kind is EntryKind.FILE:
        return "file"
    return "special"  # a device, a FIFO, a hardlink to nothing


def _tar_info(name: Visible, kind: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name.path or ".")
    entry = name.entry
    if entry is not None:
        info.mode = entry.mode & _PERMISSIONS
        info.uid, info.gid = entry.uid, entry.gid
    if kind == "dir":
        info.type = tarfile.DIRTYPE
        info.mode = info.mode if entry is not None else 0o755
    elif kind == "symlink":
        info.type = tarfile.SYMTYPE
        info.linkname = entry.link_target or "" if entry is not None else ""
    else:
        content = name.content
        assert content is not None
        info.size = content.size
        info.mode = content.mode & _PERMISSIONS
    return info


def _parent(root: int, path: str, target: str) -> tuple[int, str]:
    """The directory holding `path` under `root`, opened without following symlinks and
    created where missing, and the name in it."""
    parts = [p for p in path.split("/") if p]
    if not parts:
        return root, ""
    fd = root
    try:
        for part in parts[:-1]:
            _ensure_dir(fd, part, target, path)
            opened = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            if fd != root:
                os.close(fd)
            fd = opened
    except OSError as exc:
        if fd != root:
            os.close(fd)
        raise OutputError(f"cannot write {os.path.join(target, path)}: "
                          f"{exc.strerror or exc}") from None
    return fd, parts[-1]


def _ensure_dir(parent: int, name: str, target: str, path: str) -> None:
    try:
        os.mkdir(name, 0o755, dir_fd=parent)  # (an exported one gets its own mode at the end)
    except FileExistsError:
        found = os.stat(name, dir_fd=parent, follow_symlinks=False)
        if not stat.S_ISDIR(found.st_mode):
            raise OutputError(f"cannot write {os.path.join(target, path)}: "
                              f"{name} is in the way and is not a directory (a symlink is "
                              "never followed)") from None


def _create(parent: int, name: str) -> int:
    """A new empty file at `name`: what is there (a file, a link, a hardlink to a file outside
    DIR) is unlinked first, never written through; a directory there is an error."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    try:
        return os.open(name, flags, 0o600, dir_fd=parent)
    except FileExistsError:
        found = os.stat(name, dir_fd=parent, follow_symlinks=False)
        if stat.S_ISDIR(found.st_mode):
            raise OSError(errno.EISDIR, "a directory is in the way") from None
        os.unlink(name, dir_fd=parent)
        return os.open(name, flags, 0o600, dir_fd=parent)


def _replace_with_symlink(parent: int, name: str, link_target: str) -> None:
    try:
        os.symlink(link_target, name, dir_fd=parent)
    except FileExistsError:
        found = os.stat(name, dir_fd=parent, follow_symlinks=False)
        if stat.S_ISDIR(found.st_mode):
            raise OSError(errno.EISDIR, "a directory is in the way") from None
        os.unlink(name, dir_fd=parent)
        os.symlink(link_target, name, dir_fd=parent)


def _appender(root: int, path: str) -> Callable[[bytes], None]:
    def append(data: bytes) -> None:
        parent, base = _parent(root, path, "")
        try:
            fd = os.open(base, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW, dir_fd=parent)
        finally:
            if parent != root:
                os.close(parent)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)

    return append


def _set_mode(root: int, name: Visible, same_owner: bool, target: str) -> None:
    entry: Entry | None = name.content if not name.is_dir else name.entry
    mode = (entry.mode & _PERMISSIONS) if entry is not None else 0o755
    parent, base = _parent(root, name.path, target)
    try:
        flags = os.O_RDONLY | os.O_NOFOLLOW | (os.O_DIRECTORY if name.is_dir else 0)
        fd = os.open(base, flags, dir_fd=parent) if base else os.dup(root)
        try:
            if base:  # (DIR itself keeps its mode)
                os.fchmod(fd, mode)
            if same_owner and entry is not None:
                os.fchown(fd, entry.uid, entry.gid)
        finally:
            os.close(fd)
    except OSError as exc:
        raise OutputError(f"cannot set the mode of {os.path.join(target, name.path)}: "
                          f"{exc.strerror or exc}") from None
    finally:
        if parent != root:
            os.close(parent)
