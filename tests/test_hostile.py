"""Hostile and broken input, case by case (docs/hostile-input.md): names, headers, links,
empty layers, decompression bombs, digests that do not match, files that are not files.

Each case runs `imagescope inspect` in-process under the failure contract of `tests.hostile`.
"""

from __future__ import annotations

import io
import json
import os
import resource
import subprocess
import sys
import tarfile
import zlib
from pathlib import Path
from typing import Any

import pytest
import zstandard

from fixtures import imagegen as g
from imagescope.errors import DigestMismatch, ExitCode
from imagescope.model import EntryKind
from imagescope.sources import load
from imagescope.sources.stream import assemble, read_stream
from tests.hostile import comparable, inspect, write

ROOT = Path(__file__).resolve().parent.parent

# every case read with the compiled scan of plain headers and by Python alone
pytestmark = pytest.mark.usefixtures("tar_readers")
FORMATS = ("json", "table", "markdown")


def legacy(directory: Path, *layers: bytes, name: str = "image.tar") -> Path:
    path = directory / name
    g.write_docker_legacy(path, g.ImageSpec(layers=list(layers)))
    return path


def oci(directory: Path, *layers: bytes, compression: g.Compression = "gzip",
        name: str = "image.tar") -> Path:
    path = directory / name
    g.write_oci_archive(path, g.ImageSpec(layers=list(layers)), compression=compression)
    return path


def entries(path: Path, layer: int = 0) -> list[tuple[str, EntryKind, int, str | None]]:
    image = load(str(path))
    return [(e.path, e.kind, e.size, e.link_target) for e in image.layers[layer].entries]


def ok(path: Path | str, *flags: str, output_format: str = "json") -> dict[str, Any]:
    outcome = inspect(path, *flags, output_format=output_format)
    assert outcome.code == ExitCode.OK, outcome.stderr
    return outcome.report or {}


def fails(path: Path | str, code: ExitCode, *flags: str) -> str:
    outcome = inspect(path, *flags)
    assert outcome.code == code, outcome
    return outcome.stderr


def header(name: bytes, *, size: bytes = b"%011o\0" % 0, typeflag: bytes = b"0",
           linkname: bytes = b"", mode: bytes = b"0000644\0") -> bytes:
    """One ustar header block with any field as given (checksum computed)."""
    block = bytearray(512)
    block[0:len(name[:100])] = name[:100]
    block[100:108] = mode
    block[108:116] = b"0000000\0"
    block[116:124] = b"0000000\0"
    block[124:136] = size.ljust(12, b"\0")[:12]
    block[136:148] = b"00000000000\0"
    block[156:157] = typeflag
    block[157:157 + len(linkname)] = linkname
    block[257:265] = b"ustar\x0000"
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


def pax(records: dict[str, str | bytes], typeflag: bytes = b"x") -> bytes:
    """A PAX extended header block and its data: for the entry that follows (`x`), or for all
    that follow (`g`)."""
    body = b""
    for key, value in records.items():
        raw = value if isinstance(value, bytes) else value.encode()
        record = b" " + key.encode() + b"=" + raw + b"\n"
        length = len(record) + 1
        while len(str(length).encode()) + len(record) != length:
            length = len(str(length).encode()) + len(record)
        body += str(length).encode() + record
    return header(b"././@PaxHeader", size=b"%011o\0" % len(body), typeflag=typeflag) + pad(body)


def pad(data: bytes) -> bytes:
    return data + bytes(-len(data) % 512)


END = bytes(1024)


# --------------------------------------------------------------------------- names


def test_dotdot_names_stay_inside_the_image(tmp_path: Path) -> None:
    layer = g.layer_tar([g.file("../../etc/passwd", b"root:x:0:0\n"),
                         g.hardlink("x/../../../link", "../../etc/passwd"),
                         g.symlink("escape", "../../../../etc/shadow")])
    path = legacy(tmp_path, layer)
    assert entries(path) == [("etc/passwd", EntryKind.FILE, 11, None),
                             ("link", EntryKind.HARDLINK, 0, "etc/passwd"),
                             ("escape", EntryKind.SYMLINK, 0, "../../../../etc/shadow")]
    assert ok(path)["summary"]["final_bytes"] == 11
    assert not (tmp_path / "etc").exists() and list(tmp_path.iterdir()) == [path]


def test_absolute_names_are_image_paths(tmp_path: Path) -> None:
    layer = g.layer_tar([g.file("/etc/shadow", size=10), g.hardlink("/h", "/etc/shadow"),
                         g.file("//usr///bin/x/", size=0)])
    assert [e[0] for e in entries(legacy(tmp_path, layer))] == ["etc/shadow", "h", "usr/bin/x"]


def test_a_name_ends_at_a_nul(tmp_path: Path) -> None:
    layer = (pax({"path": b"app/real\0/../../etc/evil", "linkpath": b"t\0x"})
             + header(b"ignored", typeflag=b"2")
             + header(b"plain\0hidden", size=b"%011o\0" % 3) + pad(b"abc") + END)
    path = legacy(tmp_path, layer)
    assert entries(path) == [("app/real", EntryKind.SYMLINK, 0, "t"),
                             ("plain", EntryKind.FILE, 3, None)]
    ok(path)


@pytest.mark.parametrize("output_format", FORMATS)
def test_names_that_are_not_utf8(tmp_path: Path, output_format: str) -> None:
    layer = g.layer_tar([g.file(b"caf\xe9/\xff\xfe", size=5), g.file(b"etc/\xc3(", size=7),
                         g.file(b"root/.ssh/id_rsa\xff", b"-----BEGIN OPENSSH PRIVATE KEY-----")])
    over = g.layer_tar([g.file(b"caf\xe9/\xff\xfe", size=6)])
    path = oci(tmp_path, layer, over)
    report = ok(path, output_format=output_format)
    if output_format == "json":
        assert report["wasted_files"][0]["path"] == "/caf\udce9/\udcff\udcfe"


def test_a_3000_level_deep_path(tmp_path: Path) -> None:
    deep = "/".join(["d"] * 3000)
    path = legacy(tmp_path, g.layer_tar([g.file(deep + "/f", size=10)]),
                  g.layer_tar([g.whiteout("d")]))
    for output_format in FORMATS:
        ok(path, output_format=output_format)


# --------------------------------------------------------------------------- headers


def base256(value: int) -> bytes:
    """A 12-byte GNU base-256 size field (negative values in two's complement)."""
    raw = (value % (1 << 95)).to_bytes(12, "big")
    return bytes([raw[0] | 0x80 | (0x7F if value < 0 else 0)]) + raw[1:]


@pytest.mark.parametrize(("size", "why"), [
    (base256(1 << 88), "truncated"),  # far past the end of the data
    (base256(-(1 << 40)), "negative size"),
    (b"77777777777\0", "truncated"),  # the largest octal size
    (b"12x45\0", "corrupt size"),
])
@pytest.mark.parametrize("compression", ["plain", "gzip"])
def test_impossible_sizes(tmp_path: Path, size: bytes, why: str,
                          compression: g.Compression) -> None:
    layer = header(b"big", size=size) + pad(b"data") + END
    line = fails(oci(tmp_path, layer, compression=compression), ExitCode.CORRUPT_ARCHIVE)
    assert why in line


@pytest.mark.parametrize("records", [
    {"size": "99999999999999999999999999"}, {"size": "-1"}, {"size": "1e3"},
    {"uid": "root"}, {"gid": "1" * 5000},
])
def test_impossible_pax_numbers(tmp_path: Path, records: dict[str, str | bytes]) -> None:
    layer = pax(records) + header(b"f", size=b"%011o\0" % 4) + pad(b"data") + END
    fails(legacy(tmp_path, layer), ExitCode.CORRUPT_ARCHIVE)


def test_garbage_in_numeric_fields(tmp_path: Path) -> None:
    layer = header(b"f", mode=b"rwxr-xr\0") + END
    assert "corrupt mode" in fails(legacy(tmp_path, layer), ExitCode.CORRUPT_ARCHIVE)


def test_a_huge_metadata_entry_is_refused_before_it_is_read(tmp_path: Path) -> None:
    layer = header(b"././@LongLink", size=base256(1 << 40), typeflag=b"L") + END
    assert "metadata entry" in fails(oci(tmp_path, layer), ExitCode.CORRUPT_ARCHIVE)


def test_a_global_pax_header_with_many_keys_costs_nothing_per_entry(tmp_path: Path) -> None:
    records: dict[str, str | bytes] = {f"key{i}": "v" for i in range(50_000)}
    layer = pax(records, b"g") + g.layer_tar([g.file(f"f{i}", size=1) for i in range(3000)])
    assert ok(legacy(tmp_path, layer))["layers"][0]["entry_count"] == 3000


# --------------------------------------------------------------------------- links and entries


def test_symlink_loops_are_never_followed(tmp_path: Path) -> None:
    layer = g.layer_tar([g.symlink("a", "b"), g.symlink("b", "a"), g.symlink("self", "self"),
                         g.symlink("up", "up/../up"), g.dir("d"), g.symlink("d/loop", "..")])
    later = g.layer_tar([g.file("a/x", size=5), g.whiteout("self")])
    path = oci(tmp_path, layer, later)
    for output_format in FORMATS:
        ok(path, output_format=output_format)


def test_an_archive_whose_layer_member_is_a_symlink_loop(tmp_path: Path) -> None:
    """`docker save` links layer.tar files it already wrote; a loop of links names nothing."""
    members, _ = g.docker_legacy_members(g.ImageSpec(layers=[g.layer_tar([g.file("f", 3)])]))
    layer_name = next(m.name for m in members if m.name.endswith("/layer.tar"))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for member in members:
            info = tarfile.TarInfo(member.name)
            if member.name == layer_name:
                info.type, info.linkname = tarfile.SYMTYPE, "../loop/layer.tar"
                tar.addfile(info)
                continue
            info.size = len(member.data)
            tar.addfile(info, io.BytesIO(member.data))
        loop = tarfile.TarInfo("loop/layer.tar")
        loop.type, loop.linkname = tarfile.SYMTYPE, "../" + layer_name
        tar.addfile(loop)
    assert "missing" in fails(write(tmp_path, "loop.tar", buffer.getvalue()),
                              ExitCode.MISSING_BLOB)


def test_hardlinks_to_missing_targets_link_to_nothing(tmp_path: Path) -> None:
    layer = g.layer_tar([g.hardlink("h", "nowhere"), g.hardlink("h2", "h"), g.dir("d"),
                         g.hardlink("h3", "d"), g.hardlink("self", "self"),
                         g.file("f", size=40), g.hardlink("f2", "f")])
    later = g.layer_tar([g.whiteout("f")])
    summary = ok(legacy(tmp_path, layer, later))["summary"]
    assert (summary["total_bytes"], summary["final_bytes"], summary["wasted_bytes"]) == (40, 40, 0)


def test_an_entry_twice_in_one_layer_is_an_overwrite(tmp_path: Path) -> None:
    layer = g.layer_tar([g.file("f", size=100), g.file("f", size=200, seed="2"),
                         g.file("g", size=30), g.dir("g"), g.file("g/x", size=5)])
    report = ok(legacy(tmp_path, layer))
    assert report["summary"]["total_bytes"] == 335
    assert report["summary"]["wasted_bytes"] == 130
    assert sorted((w["path"], w["bytes"], w["hidden_by_layer"], w["how"])
                  for w in report["wasted_files"]) == [("/f", 100, 0, "overwritten"),
                                                       ("/g", 30, 0, "overwritten")]


@pytest.mark.parametrize("blob", [END, bytes(512), bytes(10240), b""],
                         ids=["end-marker", "one-zero-block", "record", "empty-blob"])
@pytest.mark.parametrize("compression", ["plain", "gzip", "zstd"])
def test_empty_layers(tmp_path: Path, blob: bytes, compression: g.Compression) -> None:
    path = oci(tmp_path, g.layer_tar([g.file("a", size=9)]), blob, compression=compression)
    report = ok(path)
    assert [layer["entry_count"] for layer in report["layers"]] == [1, 0]
    legacy_report = ok(legacy(tmp_path, g.layer_tar([g.file("a", size=9)]), blob,
                              name="legacy.tar"))
    assert legacy_report["summary"] == report["summary"]


def test_too_many_layers(tmp_path: Path) -> None:
    layer = g.layer_tar([g.file("a", size=1)])
    manifest_members, _ = g.docker_legacy_members(g.ImageSpec(layers=[layer] * 1001))
    assert "1001 layers" in fails(write(tmp_path, "tall.tar", g.tar_bytes(manifest_members)),
                                  ExitCode.CORRUPT_ARCHIVE)


def test_an_index_listing_its_child_over_and_over(tmp_path: Path) -> None:
    """Eight levels of indexes, each listing the next 200 times (200^8 paths to one manifest):
    each index is walked once."""
    members, built = g.oci_layout_members(g.ImageSpec(layers=LAYERS))
    child = {"mediaType": g.MT_OCI_MANIFEST, "digest": built.manifest_digest, "size": 1}
    extra = []
    for _ in range(8):
        index = json.dumps({"schemaVersion": 2, "mediaType": g.MT_OCI_INDEX,
                            "manifests": [child] * 200}).encode()
        extra.append(g.Member(g.blob_path(g.sha256(index)), index))
        child = {"mediaType": g.MT_OCI_INDEX, "digest": g.sha256(index), "size": len(index)}
    top = json.dumps({"schemaVersion": 2, "manifests": [child]}).encode()
    kept = [m for m in members if m.name != "index.json"] + extra
    path = write(tmp_path, "dag.tar", g.tar_bytes([*kept, g.Member("index.json", top)]))
    assert ok(path)["summary"]["total_bytes"] == 1000


def test_a_manifest_listing_one_large_config_over_and_over(tmp_path: Path) -> None:
    """20,000 manifest.json entries naming one 1 MB config: it is parsed once."""
    image = g.ImageSpec(layers=LAYERS, env=["X=" + "x" * (1 << 20)])
    members, _ = g.docker_legacy_members(image)
    manifest = json.loads(next(m.data for m in members if m.name == "manifest.json"))
    many = json.dumps(manifest * 20_000).encode()
    changed = [g.Member(m.name, many) if m.name == "manifest.json" else m for m in members]
    assert ok(write(tmp_path, "many.tar", g.tar_bytes(changed)))["summary"]["total_bytes"] == 1000


# --------------------------------------------------------------------------- decompression bombs


def zeros_layer(size: int, compression: str) -> bytes:
    """A layer holding one file of `size` zeros, compressed without building it in memory."""
    info = tarfile.TarInfo("zeros")
    info.size = size
    head = info.tobuf(tarfile.PAX_FORMAT)
    chunk = bytes(1 << 22)
    if compression == "gzip":
        gz = zlib.compressobj(9, zlib.DEFLATED, 31)
        parts = [gz.compress(head)] + [gz.compress(chunk) for _ in range(size // len(chunk))]
        return b"".join([*parts, gz.compress(bytes(size % len(chunk)) + END), gz.flush()])
    zs = zstandard.ZstdCompressor(level=3).compressobj()
    parts = [zs.compress(head)] + [zs.compress(chunk) for _ in range(size // len(chunk))]
    return b"".join([*parts, zs.compress(bytes(size % len(chunk)) + END), zs.flush()])


def bomb_image(directory: Path, compression: str, size: int) -> Path:
    blob = zeros_layer(size, compression)
    members = g.oci_layout_members(
        g.ImageSpec(layers=[g.layer_tar([g.file("a", size=9)])]),
        compression=compression,  # type: ignore[arg-type]
        blob_hook=lambda i, old: blob)[0]
    return write(directory, f"bomb-{compression}.tar", g.tar_bytes(members))


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_a_decompression_bomb_is_refused(tmp_path: Path, compression: str) -> None:
    assert len(zeros_layer(96 << 20, compression)) < (96 << 20) // 1000  # past 1000:1
    path = bomb_image(tmp_path, compression, 96 << 20)
    line = fails(path, ExitCode.LAYER_TOO_LARGE)
    assert "--max-layer-ratio" in line and "1000x" in line
    report = ok(path, "--max-layer-ratio", "0")  # no limit: read to the end
    assert report["summary"]["total_bytes"] == 96 << 20
    if compression == "gzip":  # gzip cannot pass about 1030:1
        assert ok(path, "--max-layer-ratio", "2000")["summary"]["total_bytes"] == 96 << 20


def test_a_real_layer_is_far_below_the_default_ratio(tmp_path: Path) -> None:
    """Only past 64 MiB does the ratio count: small layers of zeros are fine."""
    ok(bomb_image(tmp_path, "zstd", 60 << 20))


@pytest.mark.parametrize("compression", ["plain", "gzip", "zstd"])
def test_max_layer_size(tmp_path: Path, compression: g.Compression) -> None:
    path = oci(tmp_path, g.layer_tar([g.file("a", size=5000)]), compression=compression)
    line = fails(path, ExitCode.LAYER_TOO_LARGE, "--max-layer-size", "4KiB")
    assert "--max-layer-size 4096" in line
    ok(path, "--max-layer-size", "1MB")
    fails(legacy(tmp_path, g.layer_tar([g.file("a", size=5000)])), ExitCode.LAYER_TOO_LARGE,
          "--max-layer-size", "4096")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc")
def test_a_bomb_is_never_held_in_memory(tmp_path: Path) -> None:
    """512 MiB of zeros read to the end (no limit): peak RSS stays far below that.

    The peak is VmHWM of the child's own memory (ru_maxrss would count the test process it was
    forked from)."""
    path = bomb_image(tmp_path, "zstd", 512 << 20)
    code = ("import re; from imagescope.cli import main\n"
            "try:\n"
            f"    main(['inspect', {str(path)!r}, '--no-cache', '--format', 'json',\n"
            "          '--max-layer-ratio', '0', '-o', '/dev/null'])\n"
            "except SystemExit as exc:\n"
            "    status = open('/proc/self/status').read()\n"
            "    print(exc.code, re.search(r'VmHWM:\\s+(\\d+) kB', status).group(1))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=120, check=True)
    exit_code, peak_kib = map(int, done.stdout.split())
    assert exit_code == 0, done.stderr
    assert peak_kib < 200 * 1024, f"peak RSS {peak_kib} KiB"


# --------------------------------------------------------------------------- digests


def flip_content(tar: bytes) -> bytes:
    """`tar` with one byte of its first file's content changed: a valid tar, other bytes."""
    offset = 512 if tar[156:157] != b"x" else 1536
    return tar[:offset] + bytes([tar[offset] ^ 0x01]) + tar[offset + 1:]


LAYERS = [g.layer_tar([g.file("a", size=700)]), g.layer_tar([g.file("b", size=300)])]


@pytest.mark.parametrize("compression", ["plain", "gzip", "zstd"])
def test_oci_layer_blob_that_does_not_match_its_digest(tmp_path: Path,
                                                        compression: g.Compression) -> None:
    """A manifest left as it was, a layer blob swapped (its size kept, as a careful forger
    would): the blob's digest says so."""
    original = g.compress(LAYERS[1], compression)
    forged = g.compress(flip_content(LAYERS[1]), compression)
    assert len(forged) == len(original) and forged != original
    directory = tmp_path / "layout"
    built = g.write_oci_layout(directory, g.ImageSpec(layers=LAYERS), compression=compression)
    (directory / g.blob_path(built.layer_digests[1])).write_bytes(forged)
    line = fails(directory, ExitCode.DIGEST_MISMATCH)
    assert "layer 1" in line and "gives " + built.layer_digests[1][:23] in line
    assert "--no-verify" in line
    assert ok(directory, "--no-verify")["summary"]["total_bytes"] == 1000


@pytest.mark.parametrize("archive", ["legacy", "docker25"])
def test_docker_archive_layer_that_does_not_match_its_diff_id(tmp_path: Path,
                                                              archive: str) -> None:
    image = g.ImageSpec(layers=LAYERS)
    members = (g.docker_legacy_members(image) if archive == "legacy"
               else g.docker25_members(image))[0]
    victim = next(m for m in members if m.data == LAYERS[0])
    forged = [g.Member(m.name, flip_content(m.data)) if m is victim else m for m in members]
    path = write(tmp_path, "forged.tar", g.tar_bytes(forged))
    line = fails(path, ExitCode.DIGEST_MISMATCH)
    assert "layer 0" in line
    assert ok(path, "--no-verify")["summary"]["total_bytes"] == 1000


@pytest.mark.parametrize("document", ["config", "manifest"])
def test_oci_document_that_does_not_match_its_digest(tmp_path: Path, document: str) -> None:
    directory = tmp_path / "layout"
    built = g.write_oci_layout(directory, g.ImageSpec(layers=LAYERS))
    digest = built.config_digest if document == "config" else built.manifest_digest or ""
    target = directory / g.blob_path(digest)
    target.write_bytes(target.read_bytes().replace(b"{", b"{ ", 1))  # same JSON, other bytes
    assert "does not match its digest" in fails(directory, ExitCode.DIGEST_MISMATCH)
    ok(directory, "--no-verify")


def test_a_digest_imagescope_cannot_check(tmp_path: Path) -> None:
    directory = tmp_path / "layout"
    built = g.write_oci_layout(directory, g.ImageSpec(layers=LAYERS))
    manifest_path = directory / g.blob_path(built.manifest_digest or "")
    manifest = json.loads(manifest_path.read_bytes())
    hex_digest = built.layer_digests[0].removeprefix("sha256:")
    manifest["layers"][0]["digest"] = f"md5:{hex_digest}"
    (directory / "blobs" / "md5").mkdir()
    (directory / "blobs" / "sha256" / hex_digest).rename(directory / "blobs" / "md5" / hex_digest)
    data = json.dumps(manifest).encode()
    write(directory / "blobs" / "sha256", g.sha256(data).removeprefix("sha256:"), data)
    index = json.loads((directory / "index.json").read_bytes())
    index["manifests"][0].update(digest=g.sha256(data), size=len(data))
    (directory / "index.json").write_text(json.dumps(index))
    assert "cannot verify 'md5:" in fails(directory, ExitCode.DIGEST_MISMATCH)
    ok(directory, "--no-verify")


def test_sha512_digests_are_checked(tmp_path: Path) -> None:
    import hashlib

    directory = tmp_path / "layout"
    built = g.write_oci_layout(directory, g.ImageSpec(layers=LAYERS))
    manifest_path = directory / g.blob_path(built.manifest_digest or "")
    manifest = json.loads(manifest_path.read_bytes())
    blob_path = directory / g.blob_path(built.layer_digests[0])
    blob = blob_path.read_bytes()
    sha512 = hashlib.sha512(blob).hexdigest()
    (directory / "blobs" / "sha512").mkdir()
    blob_path.rename(directory / "blobs" / "sha512" / sha512)
    manifest["layers"][0]["digest"] = "sha512:" + sha512
    data = json.dumps(manifest).encode()
    write(directory / "blobs" / "sha256", g.sha256(data).removeprefix("sha256:"), data)
    index = json.loads((directory / "index.json").read_bytes())
    index["manifests"][0].update(digest=g.sha256(data), size=len(data))
    (directory / "index.json").write_text(json.dumps(index))
    assert ok(directory)["layers"][0]["digest"] == "sha512:" + sha512
    (directory / "blobs" / "sha512" / sha512).write_bytes(
        g.compress(flip_content(LAYERS[0]), "gzip"))
    assert "sha512" in fails(directory, ExitCode.DIGEST_MISMATCH)


def cache_keys(home: Path) -> set[str]:
    directory = home / "imagescope" / "layers" / "v1"
    if not directory.is_dir():
        return set()
    return {p.name.removesuffix(".layer").replace("-", ":", 1) for p in directory.glob("*.layer")}


def test_a_compressed_layer_with_a_lying_diff_id_cannot_poison_the_cache(tmp_path: Path) -> None:
    """The config of a gzip image claims layer 1's diff_id is another layer's (a popular base's,
    say): its blob digests check out, its diff_id is not hashed, and nothing is cached under
    the diff_id it claims. The real layer read later is reported as it is."""
    honest = LAYERS[0]
    liar_layers = [g.layer_tar([g.file("x", size=5)]), g.layer_tar([g.file("evil", size=1)])]
    claimed = g.sha256(honest)
    members, built = g.oci_layout_members(g.ImageSpec(layers=liar_layers))
    config_name = g.blob_path(built.config_digest)
    config = json.loads(next(m.data for m in members if m.name == config_name))
    config["rootfs"]["diff_ids"][1] = claimed
    config_bytes = json.dumps(config).encode()
    manifest_name = g.blob_path(built.manifest_digest or "")
    manifest = json.loads(next(m.data for m in members if m.name == manifest_name))
    manifest["config"].update(digest=g.sha256(config_bytes), size=len(config_bytes))
    manifest_bytes = json.dumps(manifest).encode()
    index = {"schemaVersion": 2, "manifests": [{
        "mediaType": g.MT_OCI_MANIFEST, "digest": g.sha256(manifest_bytes),
        "size": len(manifest_bytes)}]}
    kept = [m for m in members if m.name not in (config_name, manifest_name, "index.json")]
    kept += [g.Member(g.blob_path(g.sha256(config_bytes)), config_bytes),
             g.Member(g.blob_path(g.sha256(manifest_bytes)), manifest_bytes),
             g.Member("index.json", json.dumps(index).encode())]
    liar = write(tmp_path, "liar.tar", g.tar_bytes(kept))
    home = tmp_path / "cache"
    assert inspect(liar, cache=home).code == ExitCode.OK
    assert claimed not in cache_keys(home)
    assert built.layer_digests[1] in cache_keys(home)  # cached under what was checked
    truth = legacy(tmp_path, honest)
    outcome = inspect(truth, cache=home)
    assert outcome.report is not None
    assert outcome.report["summary"]["total_bytes"] == 700  # the real layer's /a, not /evil


def test_a_verified_layer_is_not_read_again_from_the_cache(tmp_path: Path) -> None:
    """Verified when stored, a layer is served from the cache without reading its blob: a blob
    damaged since then is not noticed (the cache key is the digest it was checked against)."""
    path = legacy(tmp_path, *LAYERS)
    home = tmp_path / "cache"
    first = inspect(path, cache=home)
    assert cache_keys(home) == {g.sha256(layer) for layer in LAYERS}
    members, _ = g.docker_legacy_members(g.ImageSpec(layers=LAYERS))
    forged = [g.Member(m.name, flip_content(m.data)) if m.data == LAYERS[0] else m
              for m in members]
    path.write_bytes(g.tar_bytes(forged))
    again = inspect(path, cache=home)
    assert again.code == ExitCode.OK and again.report == first.report
    assert inspect(path).code == ExitCode.DIGEST_MISMATCH  # without the cache it is read


def test_unverified_layers_are_not_cached(tmp_path: Path) -> None:
    home = tmp_path / "cache"
    assert inspect(legacy(tmp_path, *LAYERS), "--no-verify", cache=home).code == ExitCode.OK
    assert cache_keys(home) == set()


def test_the_engine_stream_is_verified_as_it_passes() -> None:
    """`docker save` streams manifest.json last: layers are hashed as they pass and checked
    once it has come."""
    image = g.ImageSpec(layers=LAYERS)
    members, _ = g.docker_legacy_members(image)
    forged = g.tar_bytes([g.Member(m.name, flip_content(m.data)) if m.data == LAYERS[1] else m
                          for m in members])
    intact = g.tar_bytes(members)

    def chunks(data: bytes) -> Any:
        return iter([data[i:i + 4096] for i in range(0, len(data), 4096)])

    from imagescope.progress import Progress

    saved = read_stream(chunks(intact), name="x", size=None, progress=Progress())
    image, _ = assemble(saved, where="x", reference="x", source_kind="engine", platform=None)
    assert len(image.layers) == 2
    saved = read_stream(chunks(forged), name="x", size=None, progress=Progress())
    with pytest.raises(DigestMismatch, match="layer 1"):
        assemble(saved, where="x", reference="x", source_kind="engine", platform=None)


# --------------------------------------------------------------------------- files that are not


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_pipe_is_refused_not_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "image.tar"
    os.mkfifo(fifo)
    assert "not a regular file" in fails(fifo, ExitCode.NOT_AN_IMAGE)
    directory = tmp_path / "layout"
    built = g.write_oci_layout(directory, g.ImageSpec(layers=LAYERS))
    for digest in (built.layer_digests[0], built.config_digest):
        blob = directory / g.blob_path(digest)
        saved = blob.read_bytes()
        blob.unlink()
        os.mkfifo(blob)
        assert "not a regular file" in fails(directory, ExitCode.CORRUPT_ARCHIVE)
        blob.unlink()
        blob.write_bytes(saved)
    ok(directory)


def test_a_member_claiming_a_terabyte_is_not_read_into_memory(tmp_path: Path) -> None:
    path = legacy(tmp_path, *LAYERS)
    data = bytearray(path.read_bytes())
    with tarfile.open(path) as tar:
        offset = tar.getmember("manifest.json").offset
    size = base256(1 << 40)
    data[offset + 124:offset + 136] = size
    data[offset + 148:offset + 156] = b" " * 8
    data[offset + 148:offset + 156] = b"%06o\0 " % sum(data[offset:offset + 512])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    fails(write(tmp_path, "huge.tar", bytes(data)), ExitCode.CORRUPT_ARCHIVE)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100 * 1024


def test_pathological_reports_match_across_formats(tmp_path: Path) -> None:
    """The hostile names above, in every format: the same figures."""
    layer = g.layer_tar([g.file("../x", size=3), g.file(b"\xff", size=4),
                         g.hardlink("h", "missing"), g.symlink("l", "l")])
    reports = [ok(legacy(tmp_path, layer, name="a.tar")),
               ok(oci(tmp_path, layer, compression="zstd", name="b.tar"))]
    assert comparable(reports[0])["summary"] == comparable(reports[1])["summary"]

