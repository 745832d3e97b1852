"""Every image format imagescope reads, end to end through the CLI; expected bytes worked out."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fixtures import imagegen as g
from imagescope.cli import main
from imagescope.errors import ExitCode

ROOT = Path(__file__).resolve().parent.parent

# --------------------------------------------------------------------------- the reference image
#
# layer 0 (ADD, names spelled "./a"):
#   /a 1000, /a-link (hard link to /a), /d/x 300, /d/y 200, /keep/k 50, /same 400,
#   /over 500 (content v1), /o/p 120, /s -> a                         added 2570 bytes, 12 entries
# layer 1 (RUN, names spelled "a"):
#   .wh.d            removes /d/x 300 + /d/y 200                        -> removed 500
#   /same 400        same bytes, new mode                               -> identical rewrite 400
#   /over 700        new content                                        -> overwritten 500
#   o/ + .wh..wh..opq + /o/q 80   opaque: hides /o/p 120 (not o/q)      -> removed 120
#                                                                      added 1180 bytes, 6 entries
# layer 2 (RUN, names spelled "/a"):
#   .wh.a            /a-link still names the content: nothing wasted
#   /new 60                                                            added 60 bytes, 2 entries
#
# total 2570 + 1180 + 60 = 3810; removed 500 + 120 = 620; overwritten 500 + 400 = 900 (of which
# identical rewrite 400); wasted 620 + 900 = 1520; final 3810 - 1520 = 2290
#   (= a-link 1000 + keep/k 50 + same 400 + over 700 + o/q 80 + new 60).

BUILDKIT = "buildkit.dockerfile.v0"
HISTORY = [
    g.Step("/bin/sh -c #(nop) ADD file:0a1b2c3d in / "),
    g.Step('/bin/sh -c #(nop)  ENV APP_HOME=/srv', empty_layer=True),
    g.Step("RUN /bin/sh -c rm -rf /d && chmod 755 /same # buildkit", comment=BUILDKIT),
    g.Step("RUN /bin/sh -c rm /a && touch /new # buildkit", comment=BUILDKIT),
    g.Step('CMD ["/bin/sh"]', empty_layer=True),
]
LAYER_CREATED_BY = [HISTORY[0].created_by, HISTORY[2].created_by, HISTORY[3].created_by]

EXPECTED_SUMMARY = {
    "total_bytes": 3810,
    "final_bytes": 2290,
    "wasted_bytes": 1520,
    "removed_bytes": 620,
    "overwritten_bytes": 900,
    "identical_rewrite_bytes": 400,
    "efficiency": round(2290 / 3810, 6),
    "layer_count": 3,
}
EXPECTED_WASTED_FILES = [  # largest first, then by path
    {"path": "/over", "bytes": 500, "layer_index": 0, "hidden_by_layer": 1, "how": "overwritten"},
    {"path": "/same", "bytes": 400, "layer_index": 0, "hidden_by_layer": 1,
     "how": "identical_rewrite"},
    {"path": "/d/x", "bytes": 300, "layer_index": 0, "hidden_by_layer": 1, "how": "removed"},
    {"path": "/d/y", "bytes": 200, "layer_index": 0, "hidden_by_layer": 1, "how": "removed"},
    {"path": "/o/p", "bytes": 120, "layer_index": 0, "hidden_by_layer": 1, "how": "removed"},
]
EXPECTED_LAYERS = [  # (added_bytes, wasted_bytes, entry_count, hidden_by)
    (2570, 1520, 12, [{"layer_index": 1, "bytes": 1520}]),
    (1180, 0, 6, []),
    (60, 0, 2, []),
]


def reference_layers() -> list[bytes]:
    layer0 = g.layer_tar(
        [
            g.file("a", size=1000),
            g.hardlink("a-link", "a"),
            g.dir("d"),
            g.file("d/x", size=300),
            g.file("d/y", size=200),
            g.dir("keep"),
            g.file("keep/k", size=50),
            g.file("same", size=400),
            g.file("over", size=500, seed="over v1"),
            g.dir("o"),
            g.file("o/p", size=120),
            g.symlink("s", "a"),
        ],
        spelling="dot",
    )
    layer1 = g.layer_tar(
        [
            g.whiteout("d"),
            g.file("same", size=400, mode=0o755),
            g.file("over", size=700, seed="over v2"),
            g.dir("o"),
            g.opaque("o"),
            g.file("o/q", size=80),
        ],
        spelling="plain",
    )
    layer2 = g.layer_tar([g.whiteout("a"), g.file("new", size=60)], spelling="slash")
    return [layer0, layer1, layer2]


def reference_image() -> g.ImageSpec:
    return g.ImageSpec(layers=reference_layers(), history=list(HISTORY), user="app",
                       cmd=["/bin/sh"])


# Other platforms of the multi-platform index, each with layers of its own.
# linux/arm64: /bin/tool 2000, /tmp/cache 700, then .wh.cache  -> total 2700, removed 700
# linux/arm/v7: /bin/tool 1500, /etc/conf 100, then /etc/conf 150 -> total 1750, overwritten 100


def arm64_image() -> g.ImageSpec:
    layers = [
        g.layer_tar([g.dir("bin"), g.file("bin/tool", size=2000, seed="arm64"), g.dir("tmp"),
                     g.file("tmp/cache", size=700, seed="arm64")]),
        g.layer_tar([g.whiteout("tmp/cache")]),
    ]
    return g.ImageSpec(layers=layers, architecture="arm64", variant="v8")


def armv7_image() -> g.ImageSpec:
    layers = [
        g.layer_tar([g.dir("bin"), g.file("bin/tool", size=1500, seed="armv7"), g.dir("etc"),
                     g.file("etc/conf", size=100, seed="conf v1")]),
        g.layer_tar([g.file("etc/conf", size=150, seed="conf v2")]),
    ]
    return g.ImageSpec(layers=layers, architecture="arm", variant="v7")


ARM64_SUMMARY = {
    "total_bytes": 2700, "final_bytes": 2000, "wasted_bytes": 700, "removed_bytes": 700,
    "overwritten_bytes": 0, "identical_rewrite_bytes": 0, "efficiency": round(2000 / 2700, 6),
    "layer_count": 2,
}
ARMV7_SUMMARY = {
    "total_bytes": 1750, "final_bytes": 1650, "wasted_bytes": 100, "removed_bytes": 0,
    "overwritten_bytes": 100, "identical_rewrite_bytes": 0, "efficiency": round(1650 / 1750, 6),
    "layer_count": 2,
}

# --------------------------------------------------------------------------- running the CLI


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> dict[str, Any]:
        assert self.code == ExitCode.OK, self.stderr
        doc: dict[str, Any] = json.loads(self.stdout)
        return doc


@dataclass
class Env:
    """An input folder for images and an empty working directory the CLI runs in."""

    inputs: Path
    cwd: Path
    run: Callable[..., Result]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> Env:
    inputs = tmp_path / "in"
    cwd = tmp_path / "cwd"
    inputs.mkdir()
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("IMAGESCOPE_DEBUG", raising=False)

    def run(*args: str | os.PathLike[str]) -> Result:
        """`imagescope ARGS` in-process through the console entry point, as a user runs it."""
        capfd.readouterr()
        try:
            main([str(a) for a in args])
            code: int = -1  # main() must always exit
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else -2
        out, err = capfd.readouterr()
        return Result(code, out, err)

    return Env(inputs, cwd, run)


def inspect_json(env: Env, ref: str | os.PathLike[str], *extra: str) -> dict[str, Any]:
    result = env.run("inspect", ref, "--format", "json", *extra)
    assert result.code == ExitCode.OK, result.stderr
    assert list(env.cwd.iterdir()) == [], "the CLI wrote into the working directory"
    return result.json()


def assert_one_line_error(env: Env, result: Result, code: ExitCode) -> str:
    """The failure contract: the exit code, one stderr line, no traceback, no stdout, no files."""
    assert result.code == code, (
        f"exit {result.code} != {int(code)} ({code.name}); stderr: {result.stderr!r}"
    )
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip("\n").split("\n")
    assert len(lines) == 1 and lines[0].strip(), f"stderr is not one line: {result.stderr!r}"
    assert result.stdout == ""
    assert list(env.cwd.iterdir()) == [], "the CLI wrote into the working directory"
    return lines[0]


def assert_reference_report(doc: dict[str, Any]) -> None:
    """The reference image's figures, whatever the format it was read from."""
    assert doc["schema_version"] == 1
    assert doc["summary"] == EXPECTED_SUMMARY
    assert doc["wasted_files"] == EXPECTED_WASTED_FILES
    assert doc["image"]["platform"] == "linux/amd64"
    layers = doc["layers"]
    assert [layer["index"] for layer in layers] == [0, 1, 2]
    got = [(la["added_bytes"], la["wasted_bytes"], la["entry_count"], la["hidden_by"])
           for la in layers]
    assert got == EXPECTED_LAYERS
    assert [la["created_by"] for la in layers] == LAYER_CREATED_BY
    assert [la["diff_id"] for la in layers] == reference_image().diff_ids()


# --------------------------------------------------------------------------- formats

# name -> writer(inputs dir) -> (reference for the CLI, what the writer built, expected source)
Writer = Callable[[Path], tuple[str, g.Built, set[str]]]


def _legacy(inputs: Path) -> tuple[str, g.Built, set[str]]:
    path = inputs / "legacy.tar"
    return str(path), g.write_docker_legacy(path, reference_image()), {"docker-archive"}


def _docker25(inputs: Path) -> tuple[str, g.Built, set[str]]:
    path = inputs / "docker25.tar"
    # a Docker >= 25 save is both a docker archive and an OCI archive
    return str(path), g.write_docker25(path, reference_image()), {"docker-archive", "oci-archive"}


def _oci_dir(compression: g.Compression) -> Writer:
    def write(inputs: Path) -> tuple[str, g.Built, set[str]]:
        path = inputs / f"oci-{compression}"
        built = g.write_oci_layout(path, reference_image(), compression=compression)
        return str(path), built, {"oci"}
    return write


def _oci_archive(compression: g.Compression) -> Writer:
    def write(inputs: Path) -> tuple[str, g.Built, set[str]]:
        path = inputs / f"oci-{compression}.tar"
        built = g.write_oci_archive(path, reference_image(), compression=compression)
        return str(path), built, {"oci-archive"}
    return write


def _prefixed(prefix: str, inner: Writer) -> Writer:
    def write(inputs: Path) -> tuple[str, g.Built, set[str]]:
        ref, built, _ = inner(inputs)
        return f"{prefix}:{ref}", built, {prefix}
    return write


FORMATS: dict[str, Writer] = {
    "docker-legacy": _legacy,
    "docker25": _docker25,
    "oci-dir-gzip": _oci_dir("gzip"),
    "oci-dir-zstd": _oci_dir("zstd"),
    "oci-dir-plain": _oci_dir("plain"),
    "oci-archive-gzip": _oci_archive("gzip"),
    "oci-archive-zstd": _oci_archive("zstd"),
    "oci-archive-plain": _oci_archive("plain"),
    "prefix-docker-archive-legacy": _prefixed("docker-archive", _legacy),
    "prefix-docker-archive-docker25": _prefixed("docker-archive", _docker25),
    "prefix-oci": _prefixed("oci", _oci_dir("gzip")),
    "prefix-oci-archive": _prefixed("oci-archive", _oci_archive("zstd")),
}
OCI_FORMATS = {name for name in FORMATS if "oci" in name and "docker" not in name}


@pytest.mark.parametrize("name", list(FORMATS))
def test_format_gives_the_reference_figures(env: Env, name: str) -> None:
    ref, built, sources = FORMATS[name](env.inputs)
    doc = inspect_json(env, ref)
    assert_reference_report(doc)
    assert doc["image"]["source"] in sources
    assert doc["image"]["id"] == built.config_digest
    layers = doc["layers"]
    if name in OCI_FORMATS:
        assert doc["image"]["repo_digest"] == built.manifest_digest
    if name in OCI_FORMATS or "docker25" in name:
        assert [la["digest"] for la in layers] == built.layer_digests
        # a docker save archive's descriptors describe the registry blob, not the file read
        assert [la["media_type"] for la in layers] == (
            built.layer_media_types if name in OCI_FORMATS else [None] * len(layers))
        assert [la["stored_bytes"] for la in layers] == built.layer_sizes
    else:  # legacy: layer.tar members are the plain tars
        assert [la["stored_bytes"] for la in layers] == [len(t) for t in reference_layers()]


def test_every_format_reports_the_same(env: Env) -> None:
    """One image, all formats: the analysis part of the report is identical."""
    def analysis(doc: dict[str, Any]) -> tuple[Any, ...]:
        layers = [{k: la[k] for k in ("index", "diff_id", "entry_count", "added_bytes",
                                      "wasted_bytes", "hidden_by", "created_by", "instruction")}
                  for la in doc["layers"]]
        return doc["summary"], doc["wasted_files"], layers, doc["image"]["id"]

    seen = {}
    for name, writer in FORMATS.items():
        sub = env.inputs / name
        sub.mkdir()
        ref, _, _ = writer(sub)
        seen[name] = analysis(inspect_json(env, ref))
    first = seen["docker-legacy"]
    assert {name: value == first for name, value in seen.items()} == dict.fromkeys(seen, True)


def test_output_file_is_the_only_file_written(env: Env) -> None:
    ref, _, _ = _oci_archive("gzip")(env.inputs)
    result = env.run("inspect", ref, "--format", "json", "-o", "out.json")
    assert result.code == ExitCode.OK, result.stderr
    assert result.stdout == ""
    assert sorted(p.name for p in env.cwd.iterdir()) == ["out.json"]
    doc = json.loads((env.cwd / "out.json").read_text(encoding="utf-8"))
    assert_reference_report(doc)


def test_table_format_writes_nothing_to_cwd(env: Env) -> None:
    ref, _, _ = _legacy(env.inputs)
    result = env.run("inspect", ref)
    assert result.code == ExitCode.OK, result.stderr
    assert result.stdout.strip()
    assert list(env.cwd.iterdir()) == []


def test_failed_run_does_not_create_the_output_file(env: Env) -> None:
    path = env.inputs / "junk.tar"
    path.write_bytes(g.content("junk", 4096))
    result = env.run("inspect", path, "--format", "json", "-o", "out.json")
    assert result.code == ExitCode.NOT_AN_IMAGE, result.stderr
    assert list(env.cwd.iterdir()) == []


# --------------------------------------------------------------------------- tar name encodings

LONG_DIR = "srv/" + "/".join(f"segment-{i:02d}-of-a-very-deep-tree" for i in range(5))
LONG_PATH = LONG_DIR + "/data.bin"  # > 100 bytes: needs a PAX path record or a GNU long name


@pytest.mark.parametrize("tar_format", ["pax", "gnu"])
def test_long_and_non_utf8_names(env: Env, tar_format: g.TarFormat) -> None:
    # layer 0: LONG_PATH 100, caf\xe9 (latin-1, not UTF-8) 10, naïve (UTF-8) 20
    # layer 1: .wh.data.bin in LONG_DIR (removed 100), caf\xe9 rewritten as 12 (overwritten 10)
    assert len(LONG_PATH) > 100
    layer0 = g.layer_tar([g.dir(LONG_DIR), g.file(LONG_PATH, size=100),
                          g.file(b"caf\xe9", size=10), g.file("na\u00efve", size=20)],
                         tar_format=tar_format)
    layer1 = g.layer_tar([g.whiteout(LONG_PATH), g.file(b"caf\xe9", size=12, seed="v2")],
                         tar_format=tar_format)
    path = env.inputs / "names"
    g.write_oci_layout(path, g.ImageSpec(layers=[layer0, layer1]))
    doc = inspect_json(env, path)
    assert doc["summary"]["total_bytes"] == 100 + 10 + 20 + 12
    assert doc["summary"]["removed_bytes"] == 100
    assert doc["summary"]["overwritten_bytes"] == 10
    assert doc["summary"]["final_bytes"] == 20 + 12
    wasted = doc["wasted_files"]
    assert wasted[0] == {"path": "/" + LONG_PATH, "bytes": 100, "layer_index": 0,
                         "hidden_by_layer": 1, "how": "removed"}
    # a name that is not UTF-8 round-trips as Python's surrogateescape spelling of its bytes
    assert wasted[1:] == [{"path": "/caf\udce9", "bytes": 10, "layer_index": 0,
                           "hidden_by_layer": 1, "how": "overwritten"}]


# --------------------------------------------------------------------------- multi-platform


@pytest.fixture(params=["dir-flat", "dir-nested", "archive-flat", "archive-nested"])
def multiplatform(request: pytest.FixtureRequest, env: Env) -> tuple[str, g.Built]:
    kind, layout = str(request.param).split("-")
    archive = kind == "archive"
    path = env.inputs / ("multi.tar" if archive else "multi")
    built = g.write_oci_index(path, [reference_image(), arm64_image(), armv7_image()],
                              archive=archive, nested=layout == "nested")
    return str(path), built


@pytest.mark.parametrize(
    ("wanted", "child", "summary"),
    [("linux/amd64", 0, EXPECTED_SUMMARY), ("linux/arm64/v8", 1, ARM64_SUMMARY),
     ("linux/arm/v7", 2, ARMV7_SUMMARY)],
)
def test_platform_selection(env: Env, multiplatform: tuple[str, g.Built], wanted: str,
                            child: int, summary: dict[str, Any]) -> None:
    ref, built = multiplatform
    doc = inspect_json(env, ref, "--platform", wanted)
    assert doc["summary"] == summary
    assert doc["image"]["platform"] == wanted
    assert doc["image"]["id"] == built.children[child].config_digest
    assert doc["image"]["repo_digest"] == built.children[child].manifest_digest
    assert [la["digest"] for la in doc["layers"]] == built.children[child].layer_digests
    if child == 0:
        assert_reference_report(doc)


def test_arm64_without_variant_matches(env: Env, multiplatform: tuple[str, g.Built]) -> None:
    """arm64's variant is v8 by default: `linux/arm64` must pick the linux/arm64/v8 manifest."""
    ref, _ = multiplatform
    assert inspect_json(env, ref, "--platform", "linux/arm64")["summary"] == ARM64_SUMMARY


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"),
                    reason="the default platform is the host's; this checks an amd64 host")
def test_default_platform_is_the_hosts(env: Env, multiplatform: tuple[str, g.Built]) -> None:
    ref, built = multiplatform
    doc = inspect_json(env, ref)
    assert doc["image"]["platform"] == "linux/amd64"
    assert doc["image"]["id"] == built.children[0].config_digest
    assert_reference_report(doc)


def test_absent_platform_lists_the_available_ones(env: Env,
                                                  multiplatform: tuple[str, g.Built]) -> None:
    ref, _ = multiplatform
    result = env.run("inspect", ref, "--format", "json", "--platform", "linux/s390x")
    line = assert_one_line_error(env, result, ExitCode.PLATFORM_NOT_FOUND)
    assert "linux/s390x" in line
    for available in ("linux/amd64", "linux/arm64", "linux/arm/v7"):
        assert available in line


# --------------------------------------------------------------------------- bad input


def _member_offsets(path: Path) -> dict[str, tuple[int, int, int]]:
    """name -> (header offset, data offset, size) of each member of the outer tar."""
    with tarfile.open(path) as tar:
        return {m.name: (m.offset, m.offset_data, m.size) for m in tar.getmembers()}


def _first_layer_member(path: Path) -> str:
    return next(n for n in _member_offsets(path) if n.endswith("layer.tar"))


def test_missing_archive(env: Env) -> None:
    for ref in (env.inputs / "nope.tar", f"docker-archive:{env.inputs / 'nope.tar'}",
                f"oci-archive:{env.inputs / 'nope.tar'}", f"oci:{env.inputs / 'nope-dir'}"):
        result = env.run("inspect", ref, "--format", "json")
        line = assert_one_line_error(env, result, ExitCode.SOURCE_NOT_FOUND)
        assert "nope" in line


@pytest.mark.parametrize("prefix", ["", "docker-archive:", "oci-archive:"])
def test_not_a_tar(env: Env, prefix: str) -> None:
    path = env.inputs / "random.tar"
    path.write_bytes(g.content("not a tar", 10_000))
    result = env.run("inspect", f"{prefix}{path}", "--format", "json")
    assert_one_line_error(env, result, ExitCode.NOT_AN_IMAGE)


def test_empty_file(env: Env) -> None:
    path = env.inputs / "empty.tar"
    path.write_bytes(b"")
    result = env.run("inspect", path, "--format", "json")
    assert_one_line_error(env, result, ExitCode.NOT_AN_IMAGE)


def _truncated_cuts(path: Path) -> dict[str, int]:
    """Cut points in a legacy save archive: in a header, in a layer, at a member boundary."""
    members = _member_offsets(path)
    layer_header, layer_data, layer_size = members[_first_layer_member(path)]
    manifest_header, manifest_data, manifest_size = members["manifest.json"]
    return {
        "mid-layer-header": layer_header + 100,
        "mid-layer-content": layer_data + layer_size // 2,
        "before-manifest-header": manifest_header,  # a 512-byte boundary, no end-of-archive
        "mid-manifest-content": manifest_data + manifest_size // 2,
    }


@pytest.mark.parametrize("cut", ["mid-layer-header", "mid-layer-content",
                                 "before-manifest-header", "mid-manifest-content"])
def test_truncated_docker_archive(env: Env, cut: str) -> None:
    path = env.inputs / "legacy.tar"
    g.write_docker_legacy(path, reference_image())
    data = path.read_bytes()
    path.write_bytes(data[: _truncated_cuts(path)[cut]])
    result = env.run("inspect", path, "--format", "json")
    line = assert_one_line_error(env, result, ExitCode.CORRUPT_ARCHIVE)
    assert "truncat" in line.lower()


@pytest.mark.parametrize("where", ["mid-layer-header", "mid-layer-content", "before-last-blob"])
def test_truncated_oci_archive_metadata_first(env: Env, where: str) -> None:
    """index.json first (as some tools write it): the truncation shows while reading a layer."""
    members, _ = g.oci_layout_members(reference_image(), compression="plain", metadata_first=True)
    path = env.inputs / "oci.tar"
    g.write_tar(path, members)
    offsets = _member_offsets(path)
    layer_names = [n for n in offsets if n.startswith("blobs/sha256/") and offsets[n][2] > 2000]
    header, data, size = offsets[layer_names[0]]
    last_blob_header = max(offsets[n][0] for n in offsets if n.startswith("blobs/sha256/"))
    cut = {"mid-layer-header": header + 200, "mid-layer-content": data + size // 2,
           "before-last-blob": last_blob_header}[where]
    path.write_bytes(path.read_bytes()[:cut])
    result = env.run("inspect", path, "--format", "json")
    assert_one_line_error(env, result, ExitCode.CORRUPT_ARCHIVE)


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_truncated_compressed_layer(env: Env, compression: g.Compression) -> None:
    """The blob is consistently described (digest, size) but its stream stops half-way."""
    path = env.inputs / "oci"
    g.write_oci_layout(path, reference_image(), compression=compression,
                       blob_hook=lambda i, blob: blob[: len(blob) // 2] if i == 0 else blob)
    result = env.run("inspect", path, "--format", "json")
    line = assert_one_line_error(env, result, ExitCode.CORRUPT_ARCHIVE)
    assert "truncat" in line.lower()


def test_corrupt_gzip_layer(env: Env) -> None:
    def flip(i: int, blob: bytes) -> bytes:
        if i != 1:
            return blob
        middle = len(blob) // 2
        return blob[:middle] + bytes([blob[middle] ^ 0xFF]) + blob[middle + 1:]

    path = env.inputs / "oci"
    g.write_oci_layout(path, reference_image(), compression="gzip", blob_hook=flip)
    result = env.run("inspect", path, "--format", "json")
    assert_one_line_error(env, result, ExitCode.CORRUPT_ARCHIVE)


def test_tar_without_manifest_or_index(env: Env) -> None:
    path = env.inputs / "plain.tar"
    g.write_tar(path, [g.Member("etc/hostname", b"box\n"),
                       g.Member("layer.tar", reference_layers()[0])])
    result = env.run("inspect", path, "--format", "json")
    assert_one_line_error(env, result, ExitCode.NOT_AN_IMAGE)


def test_layer_tar_is_not_an_image(env: Env) -> None:
    """A bare layer (a tar of a filesystem) is a tar, but not an image."""
    path = env.inputs / "layer.tar"
    path.write_bytes(reference_layers()[0])
    result = env.run("inspect", path, "--format", "json")
    assert_one_line_error(env, result, ExitCode.NOT_AN_IMAGE)


def test_oci_dir_without_index(env: Env) -> None:
    path = env.inputs / "oci"
    g.write_oci_layout(path, reference_image())
    (path / "index.json").unlink()
    result = env.run("inspect", path, "--format", "json")
    assert_one_line_error(env, result, ExitCode.NOT_AN_IMAGE)


def test_directory_that_is_not_a_layout(env: Env) -> None:
    path = env.inputs / "somedir"
    path.mkdir()
    (path / "README").write_text("hello\n")
    result = env.run("inspect", path, "--format", "json")
    assert_one_line_error(env, result, ExitCode.NOT_AN_IMAGE)


def _drop(members: list[g.Member], name: str) -> list[g.Member]:
    kept = [m for m in members if m.name != name]
    assert len(kept) == len(members) - 1
    return kept


def test_missing_layer_in_docker_archive(env: Env) -> None:
    members, _ = g.docker_legacy_members(reference_image())
    layer = next(m.name for m in members if m.name.endswith("layer.tar"))
    path = env.inputs / "legacy.tar"
    g.write_tar(path, _drop(members, layer))
    result = env.run("inspect", path, "--format", "json")
    assert_one_line_error(env, result, ExitCode.MISSING_BLOB)


def test_missing_config_in_docker_archive(env: Env) -> None:
    members, built = g.docker_legacy_members(reference_image())
    path = env.inputs / "legacy.tar"
    g.write_tar(path, _drop(members, built.config_digest.removeprefix("sha256:") + ".json"))
    result = env.run("inspect", path, "--format", "json")
    assert_one_line_error(env, result, ExitCode.MISSING_BLOB)


def test_missing_blob_in_docker25_archive(env: Env) -> None:
    members, built = g.docker25_members(reference_image())
    path = env.inputs / "docker25.tar"
    g.write_tar(path, _drop(members, g.blob_path(built.layer_digests[1])))
    result = env.run("inspect", path, "--format", "json")
    assert_one_line_error(env, result, ExitCode.MISSING_BLOB)


def test_missing_blob_in_oci_archive(env: Env) -> None:
    members, built = g.oci_layout_members(reference_image())
    path = env.inputs / "oci.tar"
    g.write_tar(path, _drop(members, g.blob_path(built.layer_digests[2])))
    result = env.run("inspect", path, "--format", "json")
    line = assert_one_line_error(env, result, ExitCode.MISSING_BLOB)
    assert built.layer_digests[2].removeprefix("sha256:")[:12] in line


@pytest.mark.parametrize("blob", ["layer", "config", "manifest"])
def test_missing_blob_in_oci_dir(env: Env, blob: str) -> None:
    path = env.inputs / "oci"
    built = g.write_oci_layout(path, reference_image())
    digest = {"layer": built.layer_digests[0], "config": built.config_digest,
              "manifest": built.manifest_digest}[blob]
    assert digest is not None
    (path / "blobs" / "sha256" / digest.removeprefix("sha256:")).unlink()
    result = env.run("inspect", path, "--format", "json")
    assert_one_line_error(env, result, ExitCode.MISSING_BLOB)


def test_unknown_layer_media_type(env: Env) -> None:
    path = env.inputs / "oci"
    g.write_oci_layout(path, reference_image(), layer_media_type="application/vnd.example.layer.v1")
    result = env.run("inspect", path, "--format", "json")
    line = assert_one_line_error(env, result, ExitCode.UNSUPPORTED_MEDIA_TYPE)
    assert "application/vnd.example.layer.v1" in line


@pytest.mark.parametrize(
    ("compression", "declared"),
    [("zstd", g.MT_OCI_LAYER_GZIP), ("gzip", g.MT_OCI_LAYER_ZSTD), ("gzip", g.MT_OCI_LAYER),
     ("plain", g.MT_OCI_LAYER_GZIP)],
)
def test_media_type_disagrees_with_bytes(env: Env, compression: g.Compression,
                                         declared: str) -> None:
    path = env.inputs / "oci.tar"
    g.write_oci_archive(path, reference_image(), compression=compression, layer_media_type=declared)
    result = env.run("inspect", path, "--format", "json")
    line = assert_one_line_error(env, result, ExitCode.CORRUPT_ARCHIVE)
    assert declared in line


# --------------------------------------------------------------------------- the real process


def _subprocess(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "IMAGESCOPE_DEBUG"}
    environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), environ.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "imagescope", *args], cwd=cwd, env=environ,
                          capture_output=True, text=True, timeout=60, check=False)


def test_process_success_and_failure(tmp_path: Path) -> None:
    """`python -m imagescope`: JSON on stdout; a bad archive gives one line and the exit code."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    good = tmp_path / "image.tar"
    g.write_docker_legacy(good, reference_image())
    done = _subprocess(["inspect", str(good), "--format", "json"], cwd)
    assert done.returncode == ExitCode.OK, done.stderr
    assert_reference_report(json.loads(done.stdout))

    bad = tmp_path / "bad.tar"
    members, built = g.oci_layout_members(reference_image())
    g.write_tar(bad, _drop(members, g.blob_path(built.layer_digests[0])))
    done = _subprocess(["inspect", str(bad), "--format", "json"], cwd)
    assert done.returncode == ExitCode.MISSING_BLOB
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert done.stdout == ""
    assert list(cwd.iterdir()) == []
