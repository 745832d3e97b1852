"""Layer blob → entries: tar dialects, names, compression, truncation and seek-mode digests."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import pytest
import zstandard

from imagescope.errors import CorruptArchive, UnsupportedMediaType
from imagescope.layer.digests import fill_digests
from imagescope.layer.fileio import LimitedReader
from imagescope.layer.tar import normalize_path, read_layer
from imagescope.model import EntryKind

GZIP_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"

# every case read with the compiled scan of plain headers and by Python alone
pytestmark = pytest.mark.usefixtures("tar_readers")


def tar_bytes(members: list[tuple[str, bytes | None, bytes]], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    """(name, data or None for a directory, typeflag) → a tar; link targets go in data for links."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt, encoding="utf-8",
                      errors="surrogateescape") as archive:
        for name, data, kind in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            if kind in (tarfile.LNKTYPE, tarfile.SYMTYPE):
                info.linkname = (data or b"").decode()
                archive.addfile(info)
            elif data is None:
                archive.addfile(info)
            else:
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def read(blob: bytes, media_type: str | None = None, **kw: object):  # type: ignore[no-untyped-def]
    options = {"hash_contents": True, "base_offset": None, **kw}
    return read_layer(io.BytesIO(blob), index=0, label="layer 0", media_type=media_type,
                      **options)  # type: ignore[arg-type]


F, D = tarfile.REGTYPE, tarfile.DIRTYPE


@pytest.mark.parametrize("spelling", ["./a/b", "a/b", "/a/b", "a//b", "a/./b", "a/b/"])
def test_path_spellings_are_one_path(spelling: str) -> None:
    assert normalize_path(spelling) == "a/b"


def test_dotdot_cannot_climb_above_root() -> None:
    assert normalize_path("../../etc/passwd") == "etc/passwd"
    assert normalize_path("a/../../b") == "b"
    assert normalize_path("../etc/passwd") == "etc/passwd"  # one `..` first: no `/.` in it
    assert normalize_path("../") == normalize_path("..") == normalize_path(".") == ""


def test_entries_kinds_and_sizes() -> None:
    blob = tar_bytes([("./d", None, D), ("./d/f", b"x" * 1000, F), ("h", b"./d/f", tarfile.LNKTYPE),
                      ("s", b"/etc", tarfile.SYMTYPE), ("d/.wh.gone", b"", F),
                      ("d/.wh..wh..opq", b"", F), (".wh..wh.plnk", None, D)])
    entries = read(blob)
    assert [(e.path, e.kind, e.size, e.link_target) for e in entries] == [
        ("d", EntryKind.DIR, 0, None),
        ("d/f", EntryKind.FILE, 1000, None),
        ("h", EntryKind.HARDLINK, 0, "d/f"),
        ("s", EntryKind.SYMLINK, 0, "/etc"),
        ("d/gone", EntryKind.WHITEOUT, 0, None),
        ("d", EntryKind.OPAQUE, 0, None),
    ]


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT])
def test_long_and_non_utf8_names_survive(fmt: int) -> None:
    long_name = "deep/" + "n" * 150 + "/file"
    odd_name = "caf\udce9/latin1-\udcff"  # bytes 0xE9, 0xFF: not UTF-8
    blob = tar_bytes([(long_name, b"abc", F), (odd_name, b"xy", F)], fmt)
    paths = [e.path for e in read(blob)]
    assert paths == [long_name, odd_name]
    assert paths[1].encode("utf-8", "surrogateescape") == b"caf\xe9/latin1-\xff"


def test_ustar_prefix_field_is_joined() -> None:
    name = "p" * 120 + "/short"
    blob = tar_bytes([(name, b"z", F)], tarfile.USTAR_FORMAT)
    assert [e.path for e in read(blob)] == [name]


def test_gzip_multi_member_and_zstd_multi_frame() -> None:
    blob = tar_bytes([("a", b"1" * 700, F), ("b", b"2" * 5, F)])
    half = len(blob) // 2
    two_members = gzip.compress(blob[:half], mtime=0) + gzip.compress(blob[half:], mtime=0)
    compressor = zstandard.ZstdCompressor()
    two_frames = compressor.compress(blob[:half]) + compressor.compress(blob[half:])
    expected = [(e.path, e.size, e.digest) for e in read(blob)]
    assert [(e.path, e.size, e.digest) for e in read(two_members, GZIP_TYPE)] == expected
    assert [(e.path, e.size, e.digest) for e in read(two_frames)] == expected


def test_digest_depends_on_content_only() -> None:
    entries = read(tar_bytes([("a", b"same", F), ("b", b"same", F), ("c", b"diff", F)]))
    assert entries[0].digest == entries[1].digest != entries[2].digest


def test_seek_mode_records_offsets_and_defers_digests(tmp_path: Path) -> None:
    inner = tar_bytes([("a", b"A" * 3000, F), ("b", b"B" * 10, F)])
    prefix = b"P" * 1024  # the layer sits at offset 1024 of an outer file
    outer = tmp_path / "outer.bin"
    outer.write_bytes(prefix + inner)
    with outer.open("rb") as handle:
        handle.seek(1024)
        entries = read_layer(LimitedReader(handle, len(inner)), index=0, label="l",
                             media_type=None, hash_contents=False, base_offset=1024)
    assert all(e.digest is None for e in entries)
    assert outer.read_bytes()[entries[0].offset:entries[0].offset + 3000] == b"A" * 3000
    fill_digests(str(outer), entries)
    assert [e.digest for e in entries] == [e.digest for e in read(inner)]


@pytest.mark.parametrize("cut", [100, 512, 700, 1500])
def test_truncated_tar_is_an_error(cut: int) -> None:
    blob = tar_bytes([("a", b"x" * 2000, F)])
    with pytest.raises(CorruptArchive, match="truncated|not a tar"):
        read(blob[:cut])


def test_tar_without_end_marker_ends_on_a_header_boundary() -> None:
    """Go's archive/tar, GNU tar and tarfile end cleanly where a header would start."""
    blob = tar_bytes([("a", b"x" * 512, F), ("b", b"y" * 100, F)])
    assert [(e.path, e.size) for e in read(blob[:1024])] == [("a", 512)]  # header + content
    assert [(e.path, e.size) for e in read(blob[:2048])] == [("a", 512), ("b", 100)]


def test_a_lone_512_byte_layer_is_one_entry() -> None:
    """moby's tests ship a layer that is one directory header and nothing else."""
    blob = tar_bytes([("etc", None, D)])[:512]
    assert [(e.path, e.kind) for e in read(blob)] == [("etc", EntryKind.DIR)]


@pytest.mark.parametrize("cut, where", [(1024 + 100, "inside a tar header at offset 1024"),
                                        (1024 + 512 + 50, "inside the data of 'b'"),
                                        (1024 + 511, "inside a tar header at offset 1024")])
def test_a_header_or_data_cut_short_stays_an_error(cut: int, where: str) -> None:
    blob = tar_bytes([("a", b"x" * 512, F), ("b", b"y" * 100, F)])
    with pytest.raises(CorruptArchive, match=f"truncated {where}"):
        read(blob[:cut])


def test_padding_cut_short_ends_the_stream() -> None:
    """Go reads the last member's data, then meets the end inside its padding: io.EOF, the end
    of the archive (archive/tar tryReadFull)."""
    blob = tar_bytes([("a", b"x" * 512, F), ("b", b"y" * 100, F)])
    assert [(e.path, e.size) for e in read(blob[:1024 + 512 + 100 + 7])] == [("a", 512),
                                                                            ("b", 100)]


@pytest.mark.parametrize("magic", [0x184D2A50, 0x184D2A5E])
def test_zstd_that_opens_with_a_skippable_frame(magic: int) -> None:
    """zstd:chunked writers put a skippable frame (RFC 8878: magic 0x184D2A5?, a 4-byte size,
    that many bytes) before the data; `zstd -dc` skips it, and so must the reader."""
    blob = tar_bytes([("a", b"x" * 700, F)])
    skippable = magic.to_bytes(4, "little") + (8).to_bytes(4, "little") + b"manifest"
    zstd = skippable + zstandard.ZstdCompressor().compress(blob)
    assert [(e.path, e.size) for e in read(zstd)] == [("a", 700)]
    assert [(e.path, e.size) for e in read(
        zstd, "application/vnd.oci.image.layer.v1.tar+zstd")] == [("a", 700)]


def test_truncated_gzip_and_zstd() -> None:
    blob = tar_bytes([("a", bytes(range(256)) * 40, F)])
    with pytest.raises(CorruptArchive, match="gzip stream is truncated"):
        read(gzip.compress(blob)[:-9])
    with pytest.raises(CorruptArchive, match="zstd stream is truncated"):
        read(zstandard.ZstdCompressor().compress(blob)[:-5])


def test_not_a_tar() -> None:
    with pytest.raises(CorruptArchive, match="not a tar"):
        read(b"hello, world\n" * 100)


def test_media_type_must_agree_with_magic() -> None:
    zstd_blob = zstandard.ZstdCompressor().compress(tar_bytes([("a", b"x", F)]))
    with pytest.raises(CorruptArchive, match="declares gzip but the blob is zstd"):
        read(zstd_blob, GZIP_TYPE)


def test_unknown_media_type() -> None:
    with pytest.raises(UnsupportedMediaType, match="application/x-foo"):
        read(tar_bytes([("a", b"x", F)]), "application/x-foo")


def test_corrupt_header_checksum() -> None:
    blob = bytearray(tar_bytes([("a", b"x", F), ("b", b"y", F)]))
    blob[1024 + 10] ^= 0xFF  # second header's name
    with pytest.raises(CorruptArchive, match="corrupt tar header at offset 1024"):
        read(bytes(blob))


def test_package_databases_and_small_secret_suspects_are_captured() -> None:
    status = b"Package: make\nStatus: install ok installed\n"
    key = b"-----BEGIN OPENSSH PRIVATE KEY-----\n"
    blob = tar_bytes([("var/lib/dpkg/status", status, F), ("root/.ssh/id_rsa", key, F),
                      ("srv/big.pem", b"x" * (65 * 1024), F), ("usr/bin/tool", b"binary", F)])
    captured = {e.path: e.content for e in read(blob)}
    assert captured == {"var/lib/dpkg/status": status, "root/.ssh/id_rsa": key,
                        "srv/big.pem": None, "usr/bin/tool": None}


def test_capture_works_in_seek_mode_too(tmp_path: Path) -> None:
    blob = tar_bytes([("usr/bin/tool", b"T" * 5000, F), ("var/lib/dpkg/status", b"S" * 10, F)])
    layer = tmp_path / "layer.tar"
    layer.write_bytes(blob)
    with layer.open("rb") as handle:
        entries = read_layer(handle, index=0, label="l", media_type=None, hash_contents=False,
                             base_offset=0)
    assert [e.content for e in entries] == [None, b"S" * 10]


def spelled_header(name: bytes, size_field: bytes, *, checksum: str = "%06o\0 ",
                   signed: bool = False) -> bytes:
    """A ustar header of a regular file whose size field is `size_field` as given and whose
    checksum is spelled by `checksum` (over unsigned bytes, or signed ones as old tars did)."""
    block = bytearray(512)
    block[0:len(name)] = name
    block[100:124] = b"0000644\0" + b"0001750\0" + b"0001750\0"
    block[124:136] = size_field
    block[136:148] = b"00000000000\0"
    block[156:157] = b"0"
    block[257:265] = b"ustar\x0000"
    block[148:156] = b" " * 8
    total = sum(b - 256 if signed and b > 127 else b for b in block)
    block[148:156] = (checksum % total).encode().ljust(8, b"\0")
    return bytes(block)


@pytest.mark.parametrize(("size_field", "size"), [
    (b"00000000012\0", 10),  # GNU and ustar: 11 digits, NUL
    (b"000000000012", 10),  # 12 digits, no terminator (star, large files)
    (b"         12\0", 10),  # leading spaces
    (b"12          ", 10),  # trailing spaces
    (b"12\0\0\0\0\0\0\0\0\0\0", 10),  # NUL-padded
    (b"12\0garbage\0\0", 10),  # what follows the terminator is not read
    (b"\x80" + (10).to_bytes(11, "big"), 10),  # GNU base-256
    (b"\0" * 12, 0),  # empty: zero
])
@pytest.mark.parametrize("checksum", ["%06o\0 ", "%07o\0", "%o\0", "%08o"])
def test_numeric_fields_in_every_spelling_tar_writers_use(size_field: bytes, size: int,
                                                          checksum: str) -> None:
    """The header's size and checksum read the same however they are spelled (the common
    spelling takes a fast path; every other one the general rules)."""
    content = b"0123456789"[:size]
    blob = (spelled_header(b"f", size_field, checksum=checksum) + content
            + bytes(-size % 512) + bytes(1024))
    (entry,) = read(blob)
    assert (entry.path, entry.size) == ("f", size)


def test_a_checksum_over_signed_bytes_is_accepted() -> None:
    """Old tars summed the header as signed chars: a UTF-8 name makes the sums differ."""
    name = "caf\u00e9".encode()
    blob = spelled_header(name, b"00000000000\0", signed=True) + bytes(1024)
    assert [e.path for e in read(blob)] == ["caf\u00e9"]
    wrong = bytearray(spelled_header(name, b"00000000000\0"))
    wrong[148:156] = b"%06o\0 " % 1
    with pytest.raises(CorruptArchive, match="not a tar archive"):
        read(bytes(wrong) + bytes(1024))


def test_a_size_field_that_is_no_number_is_corrupt() -> None:
    blob = spelled_header(b"f", b"0000 0000012") + bytes(1024)
    with pytest.raises(CorruptArchive, match="corrupt size field"):
        read(blob)
