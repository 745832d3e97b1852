"""Header-only entries (links, devices, directories, FIFOs) have no data section, whatever their
size field says: the next header follows at once, as Go's archive/tar (so Docker and containerd)
and Python's tarfile read it. A size field must not let a member hide behind such a header.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from fixtures import imagegen as g
from imagescope.errors import ExitCode
from imagescope.layer import tar as layers
from imagescope.layer.capture import should_capture
from imagescope.model import EntryKind
from tests.cli import run_process

from .test_tarscan import _both, needs_scan

BLOCK = 512
KEY = b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAA\n"  # 60 bytes


def header(name: str, typeflag: bytes, size: int, link: str = "") -> bytes:
    """A ustar header written field by field, so the size field says what the test wants."""
    block = bytearray(BLOCK)
    block[0:len(name)] = name.encode()
    block[100:108] = b"0000644\0"
    block[108:116] = b"0000000\0"
    block[116:124] = b"0000000\0"
    block[124:136] = b"%011o\0" % size
    block[136:148] = b"00000000000\0"
    block[156:157] = typeflag
    block[157:157 + len(link)] = link.encode()
    block[257:265] = b"ustar\x0000"
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


def member(name: str, data: bytes) -> bytes:
    """A complete regular-file member: header, data, padding to the block."""
    return header(name, b"0", len(data)) + data + bytes(-len(data) % BLOCK)


HIDDEN = member("root/.ssh/id_rsa", KEY)  # 512 + 512 bytes
AFTER = member("after", b"abc")
END = bytes(2 * BLOCK)


def smuggling(typeflag: bytes) -> bytes:
    """A header-only entry whose size field covers exactly the member after it."""
    link = "target" if typeflag in b"12" else ""
    return header("evil", typeflag, len(HIDDEN), link) + HIDDEN + AFTER + END


def read(blob: bytes) -> list[tuple[str, EntryKind, int]]:
    entries = layers.read_layer(io.BytesIO(blob), index=0, label="layer 0", media_type=None,
                                hash_contents=True, base_offset=None)
    return [(e.path, e.kind, e.size) for e in entries]


KIND_OF = {b"1": EntryKind.HARDLINK, b"2": EntryKind.SYMLINK, b"3": EntryKind.SPECIAL,
           b"4": EntryKind.SPECIAL, b"5": EntryKind.DIR, b"6": EntryKind.SPECIAL}


@pytest.mark.usefixtures("tar_readers")
@pytest.mark.parametrize("typeflag", sorted(KIND_OF))
def test_a_header_only_entry_hides_nothing(typeflag: bytes) -> None:
    assert len(HIDDEN) == 1024  # the size field the evil header carries
    assert read(smuggling(typeflag)) == [
        ("evil", KIND_OF[typeflag], 0),
        ("root/.ssh/id_rsa", EntryKind.FILE, 60),
        ("after", EntryKind.FILE, 3),
    ]


@pytest.mark.parametrize("typeflag", sorted(KIND_OF))
def test_tarfile_reads_the_same_members(typeflag: bytes) -> None:
    """The rule is the runtime's, not ours: tarfile (like Go) reads the member after it."""
    with tarfile.open(fileobj=io.BytesIO(smuggling(typeflag))) as tar:
        assert tar.getnames() == ["evil", "root/.ssh/id_rsa", "after"]


@pytest.mark.usefixtures("tar_readers")
def test_a_pax_size_on_a_symlink_is_ignored_too() -> None:
    record = b"13 size=1024\n"  # 13 bytes: "13 size=1024\n"
    pax = header("PaxHeaders/evil", b"x", len(record)) + record + bytes(BLOCK - len(record))
    blob = pax + header("evil", b"2", 0, "target") + HIDDEN + AFTER + END
    assert read(blob) == [("evil", EntryKind.SYMLINK, 0), ("root/.ssh/id_rsa", EntryKind.FILE, 60),
                          ("after", EntryKind.FILE, 3)]


@pytest.mark.usefixtures("tar_readers")
def test_a_trailing_slash_makes_a_directory_only_of_the_old_file_type() -> None:
    """Type NUL with a trailing slash is a directory (no data); type '0' stays a regular file
    whose data is its size (Go: TypeRegA only; Docker then cleans the name to `d0`)."""
    blob = (header("dnul/", b"\0", len(HIDDEN)) + HIDDEN
            + header("d0/", b"0", 3) + b"xyz" + bytes(BLOCK - 3) + AFTER + END)
    assert read(blob) == [("dnul", EntryKind.DIR, 0), ("root/.ssh/id_rsa", EntryKind.FILE, 60),
                          ("d0", EntryKind.FILE, 3), ("after", EntryKind.FILE, 3)]


@pytest.mark.usefixtures("tar_readers")
def test_an_unknown_type_keeps_its_data() -> None:
    """Types that are not header-only (here 'Z') have a data section of their size, as in Go."""
    blob = header("odd", b"Z", len(HIDDEN)) + HIDDEN + AFTER + END
    assert read(blob) == [("odd", EntryKind.SPECIAL, 0), ("after", EntryKind.FILE, 3)]


@needs_scan
@pytest.mark.parametrize("typeflag", sorted(KIND_OF))
@pytest.mark.parametrize("chunk", [1, 512, 1000, 1536, 1 << 20])
def test_the_compiled_and_python_scans_agree(typeflag: bytes, chunk: int) -> None:
    entries = _both(smuggling(typeflag), chunk)
    assert not isinstance(entries, str)
    assert [e.path for e in entries] == ["evil", "root/.ssh/id_rsa", "after"]
    captured = [e for e in entries if e.content is not None]
    assert [e.path for e in captured] == (["root/.ssh/id_rsa"]
                                          if should_capture("root/.ssh/id_rsa", 60) else [])


def test_a_smuggled_secret_fails_the_secrets_gate(tmp_path: Path) -> None:
    image = tmp_path / "smuggled.tar"
    base = g.layer_tar([g.dir("bin"), g.file("bin/sh", b"#!" + b"x" * 98)])
    g.write_docker_legacy(image, g.ImageSpec(
        layers=[base, smuggling(b"2")],
        history=[g.Step("/bin/sh -c #(nop) ADD file:base in / "),
                 g.Step("/bin/sh -c #(nop) COPY dir:evil in / ")]))
    result = run_process("inspect", str(image), "--fail-on-secrets", "--no-cache",
                         cwd=tmp_path)
    assert result.returncode == ExitCode.GATE_FAILED, result.stderr
    assert "FAIL fail-on-secrets: 1 secret file(s) in the image: /root/.ssh/id_rsa" \
        in result.stdout
