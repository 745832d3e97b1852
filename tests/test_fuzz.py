"""Hostile input, fuzzed: Hypothesis-driven mutations of valid images in every format (outer
tars, layer blobs, gzip/zstd streams, manifests, configs and indexes) and truncations at every
boundary. Whatever the input, `imagescope inspect` ends with a documented exit code and one line
on stderr, never a traceback, and within a time limit.

The run is bounded and reproducible: profile `imagescope-ci` (the default) is derandomized with
a fixed number of examples per test; `IMAGESCOPE_FUZZ_PROFILE=imagescope-deep` runs many more,
randomly, keeping failures in Hypothesis' example database.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tarfile
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase

from fixtures import imagegen as g
from imagescope.errors import ExitCode, ImagescopeError
from imagescope.layer.fileio import LimitedReader
from imagescope.layer.tar import read_layer
from tests.hostile import HANG_SECONDS, comparable, inspect, time_limit, write

settings.register_profile(
    "imagescope-ci", max_examples=80, derandomize=True, database=None,
    deadline=timedelta(seconds=5), print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile(
    "imagescope-deep", max_examples=2000, derandomize=False, deadline=timedelta(seconds=10),
    database=DirectoryBasedExampleDatabase(
        str(Path(__file__).resolve().parent.parent / ".hypothesis" / "examples")),
    print_blob=True, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FUZZ = settings.get_profile(os.environ.get("IMAGESCOPE_FUZZ_PROFILE", "imagescope-ci"))


def examples(weight: float) -> settings:
    """The profile, with `weight` times its number of examples."""
    return settings(FUZZ, max_examples=max(1, int(FUZZ.max_examples * weight)))


# --------------------------------------------------------------------------- the seed image


def seed_layers() -> list[bytes]:
    """Small layers using every tar dialect and entry kind the reader knows."""
    layer0 = g.layer_tar([
        g.dir("etc"),
        g.file("etc/os-release", b"ID=fuzz\n"),
        g.dir("usr/bin"),
        g.file("usr/bin/tool", size=1500),
        g.hardlink("usr/bin/tool2", "usr/bin/tool"),
        g.symlink("bin", "usr/bin"),
        g.file("var/lib/dpkg/status", b"Package: fuzz\nStatus: install ok installed\n"),
        g.file("root/.ssh/id_rsa", b"-----BEGIN OPENSSH PRIVATE KEY-----\n"),
        g.file("deep/" + "n" * 120 + "/long", size=40),  # a PAX path record
        g.fifo("run/pipe"),
    ], spelling="dot")
    layer1 = g.layer_tar([
        g.whiteout("usr/bin/tool2"),
        g.dir("etc"),
        g.opaque("etc"),
        g.file("etc/new", size=30),
        g.file("usr/bin/tool", size=1500, mode=0o755),  # an identical rewrite
        g.file("gnu/" + "m" * 110, size=20),  # a GNU ././@LongLink name
    ], tar_format="gnu")
    layer2 = g.layer_tar([g.file("app/main", size=700), g.whiteout("deep")], spelling="slash")
    return [layer0, layer1, layer2]


def seed_image() -> g.ImageSpec:
    return g.ImageSpec(layers=seed_layers())


def oci_members(compression: g.Compression,
                hook: g.BlobHook | None = None) -> list[g.Member]:
    return g.oci_layout_members(seed_image(), compression=compression, blob_hook=hook)[0]


def oci_with_blob(compression: g.Compression, index: int, blob: bytes) -> bytes:
    """An OCI archive whose layer `index` is `blob`, every digest consistent with it: the
    manifest's, and for a plain blob the config's diff_id (a compressed blob's diff_id is not
    checked on a first read)."""
    if compression == "plain":
        layers = [blob if i == index else layer for i, layer in enumerate(seed_layers())]
        members = g.oci_layout_members(g.ImageSpec(layers=layers), compression="plain")[0]
    else:
        members = oci_members(compression, lambda i, old: blob if i == index else old)
    return g.tar_bytes(members)


# name → the outer archive, as bytes
ARCHIVES: dict[str, Callable[[], bytes]] = {
    "docker-legacy": lambda: g.tar_bytes(g.docker_legacy_members(seed_image())[0]),
    "docker25": lambda: g.tar_bytes(g.docker25_members(seed_image())[0]),
    "oci-archive-gzip": lambda: g.tar_bytes(oci_members("gzip")),
    "oci-archive-zstd": lambda: g.tar_bytes(oci_members("zstd")),
    "oci-archive-plain": lambda: g.tar_bytes(oci_members("plain")),
}
_ARCHIVE_BYTES = {name: make() for name, make in ARCHIVES.items()}
LAYER_MEDIA_TYPES = {"plain": g.MT_OCI_LAYER, "gzip": g.MT_OCI_LAYER_GZIP,
                     "zstd": g.MT_OCI_LAYER_ZSTD}


@pytest.fixture(scope="module")
def reference_reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """The report of each intact seed archive (they all describe the same image)."""
    directory = tmp_path_factory.mktemp("seeds")
    reports = {}
    for name, data in _ARCHIVE_BYTES.items():
        outcome = inspect(write(directory, f"{name}.tar", data))
        assert outcome.code == ExitCode.OK, outcome.stderr
        assert outcome.report is not None
        reports[name] = outcome.report
    summaries = [report["summary"] for report in reports.values()]
    assert all(summary == summaries[0] for summary in summaries)
    assert summaries[0]["identical_rewrite_bytes"] == 1500
    return reports


@pytest.fixture(scope="module", autouse=True)
def quiet_directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Run from an empty directory: no config file above it decides anything."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path_factory.mktemp("cwd"))
        yield


# --------------------------------------------------------------------------- byte mutations

HEADER_FIELDS = (0, 99, 100, 108, 116, 124, 135, 136, 148, 156, 157, 257, 263, 345, 500)


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """`data` with a few structural mutations, biased towards tar header fields."""
    blob = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        if not blob:
            break
        blocks = max(1, len(blob) // 512)
        anywhere = st.integers(0, len(blob) - 1)
        in_header = st.builds(lambda block, field: min(block * 512 + field, len(blob) - 1),
                              st.integers(0, blocks - 1), st.sampled_from(HEADER_FIELDS))
        at = draw(st.one_of(anywhere, in_header))
        how = draw(st.sampled_from(["byte", "bytes", "zero", "ff", "digits", "cut", "insert",
                                    "delete", "repeat-block"]))
        if how == "byte":
            blob[at] = draw(st.integers(0, 255))
        elif how == "bytes":
            chunk = draw(st.binary(min_size=1, max_size=16))
            blob[at:at + len(chunk)] = chunk
        elif how == "zero":
            blob[at:at + draw(st.integers(1, 1024))] = b""  # shortened: zeros land elsewhere
            blob[at:at] = bytes(draw(st.integers(1, 1024)))
        elif how == "ff":
            width = draw(st.integers(1, 12))
            blob[at:at + width] = b"\xff" * width  # base-256 sizes, huge numbers
        elif how == "digits":
            blob[at:at + 11] = draw(st.sampled_from(
                [b"77777777777", b"00000000000", b"-0000000001", b"99999999999", b"      \0   "]))
        elif how == "cut":
            del blob[at:]
        elif how == "insert":
            blob[at:at] = draw(st.binary(min_size=1, max_size=600))
        elif how == "delete":
            del blob[at:at + draw(st.integers(1, 600))]
        else:
            start = (at // 512) * 512
            blob[start:start] = blob[start:start + 512]
    return bytes(blob)


@examples(1.0)
@given(name=st.sampled_from(sorted(ARCHIVES)), data=st.data(),
       verify=st.booleans(), output_format=st.sampled_from(["json", "table", "markdown"]))
def test_mutated_archives_fail_cleanly(tmp_path_factory: pytest.TempPathFactory, name: str,
                                       data: st.DataObject, verify: bool,
                                       output_format: str) -> None:
    archive = data.draw(mutated(_ARCHIVE_BYTES[name]), label="archive")
    directory = tmp_path_factory.mktemp("mutated", numbered=True)
    flags = [] if verify else ["--no-verify"]
    inspect(write(directory, "image.tar", archive), *flags, output_format=output_format)


@examples(0.5)
@given(compression=st.sampled_from(["gzip", "zstd", "plain"]), data=st.data(),
       member=st.sampled_from(["index.json", "oci-layout", "manifest", "config", "layer"]))
def test_mutated_layout_files_fail_cleanly(tmp_path_factory: pytest.TempPathFactory,
                                           compression: g.Compression, data: st.DataObject,
                                           member: str) -> None:
    members, built = g.oci_layout_members(seed_image(), compression=compression)
    target = {"index.json": "index.json", "oci-layout": "oci-layout",
              "manifest": g.blob_path(built.manifest_digest or ""),
              "config": g.blob_path(built.config_digest),
              "layer": g.blob_path(built.layer_digests[1])}[member]
    directory = tmp_path_factory.mktemp("layout", numbered=True)
    for item in members:
        path = directory / item.name
        path.parent.mkdir(parents=True, exist_ok=True)
        body = data.draw(mutated(item.data), label=item.name) if item.name == target else item.data
        path.write_bytes(body)
    verify = data.draw(st.booleans(), label="verify")
    inspect(directory, *([] if verify else ["--no-verify"]))


@examples(1.0)
@given(compression=st.sampled_from(["gzip", "zstd", "plain"]), index=st.integers(0, 2),
       data=st.data())
def test_mutated_layer_blobs_with_consistent_digests(tmp_path_factory: pytest.TempPathFactory,
                                                     compression: g.Compression, index: int,
                                                     data: st.DataObject) -> None:
    """The blob mutated before it is digested: verification passes, the parser meets it."""
    layer = seed_layers()[index]
    changed = data.draw(mutated(g.compress(layer, compression)), label="blob")
    directory = tmp_path_factory.mktemp("consistent", numbered=True)
    inspect(write(directory, "image.tar", oci_with_blob(compression, index, changed)),
            output_format=data.draw(st.sampled_from(["json", "table", "markdown"])))


# --------------------------------------------------------------------------- the engine's stream


def read_engine_stream(archive: bytes, chunk: int) -> None:
    """What the engine source does with `docker save` output, on `archive` in `chunk`-byte
    pieces: walk the stream, parse layers as they pass, assemble the image."""
    from imagescope.progress import Progress
    from imagescope.sources.stream import assemble, read_stream

    pieces = iter([archive[i:i + chunk] for i in range(0, len(archive), chunk)])
    with time_limit(HANG_SECONDS):
        saved = read_stream(pieces, name="fuzz", size=None, progress=Progress())
        assemble(saved, where="fuzz", reference="fuzz", source_kind="engine", platform=None)


@examples(1.0)
@given(name=st.sampled_from(["docker-legacy", "docker25"]), data=st.data(),
       chunk=st.sampled_from([1, 511, 4096, 1 << 20]))
def test_engine_stream_reader_raises_only_typed_errors(name: str, data: st.DataObject,
                                                       chunk: int) -> None:
    archive = data.draw(mutated(_ARCHIVE_BYTES[name]), label="stream")
    with contextlib.suppress(ImagescopeError):
        read_engine_stream(archive, chunk)


@pytest.mark.parametrize("name", ["docker-legacy", "docker25"])
def test_engine_stream_cut_at_every_block(name: str) -> None:
    archive = _ARCHIVE_BYTES[name]
    whole_from = _end_of_members(archive) + 512
    for cut in range(0, len(archive) + 1, 512):
        if cut >= whole_from:
            read_engine_stream(archive[:cut], 4096)
            continue
        with pytest.raises(ImagescopeError) as caught:
            read_engine_stream(archive[:cut], 4096)
        assert caught.value.exit_code in (ExitCode.CORRUPT_ARCHIVE, ExitCode.ENGINE_ERROR), cut


# --------------------------------------------------------------------------- the layer reader


def read_blob(blob: bytes, media_type: str | None, *, seekable: bool) -> None:
    """read_layer on `blob` as a seekable plain source reads it, or as a stream."""
    with time_limit(HANG_SECONDS):
        if seekable:
            source = io.BytesIO(b"\0" * 7 + blob)
            source.seek(7)
            read_layer(LimitedReader(source, len(blob)), index=0, label="l",
                       media_type=media_type, hash_contents=False, base_offset=7)
        else:
            read_layer(io.BytesIO(blob), index=0, label="l", media_type=media_type,
                       hash_contents=True, base_offset=None)


@examples(5.0)
@given(compression=st.sampled_from(["gzip", "zstd", "plain"]), index=st.integers(0, 2),
       declared=st.booleans(), seekable=st.booleans(), data=st.data())
def test_layer_reader_raises_only_typed_errors(compression: g.Compression, index: int,
                                               declared: bool, seekable: bool,
                                               data: st.DataObject) -> None:
    blob = data.draw(mutated(g.compress(seed_layers()[index], compression)), label="blob")
    with contextlib.suppress(ImagescopeError):
        read_blob(blob, LAYER_MEDIA_TYPES[compression] if declared else None, seekable=seekable)


@examples(2.0)
@given(blob=st.binary(max_size=3000), seekable=st.booleans())
def test_layer_reader_on_random_bytes(blob: bytes, seekable: bool) -> None:
    with contextlib.suppress(ImagescopeError):
        read_blob(blob, None, seekable=seekable)


# --------------------------------------------------------------------------- JSON documents

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False)
    | st.text(max_size=20) | st.sampled_from([
        "sha256:" + "0" * 64, "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json", "../../etc/passwd", "@0", "linux",
        "amd64", "unknown", "blobs/sha256/../../x", "md5:00"]),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12)


@st.composite
def json_mutated(draw: st.DrawFn, document: Any) -> Any:
    """`document` with one value replaced, a key deleted or added, somewhere in its tree."""
    document = json.loads(json.dumps(document))
    holder: Any = None
    key: Any = None
    node = document
    while isinstance(node, dict | list) and node and draw(st.booleans()):
        holder = node
        key = draw(st.sampled_from(sorted(node) if isinstance(node, dict)
                                   else list(range(len(node)))))
        node = node[key]
    how = draw(st.sampled_from(["replace", "delete", "add", "wrap"]))
    value = draw(JSON_VALUES)
    if holder is None:
        return value if how != "wrap" else [document]
    if how == "replace":
        holder[key] = value
    elif how == "delete":
        del holder[key]
    elif how == "add" and isinstance(holder, dict):
        holder[draw(st.text(max_size=12))] = value
    elif how == "add":
        holder.insert(key, value)
    else:
        holder[key] = [holder[key]]
    return document


def _dumps(document: Any) -> bytes:
    return json.dumps(document).encode()


def _legacy_with(manifest: Callable[[Any], Any], config: Callable[[Any], Any]) -> bytes:
    members, built = g.docker_legacy_members(seed_image())
    config_name = built.config_digest.removeprefix("sha256:") + ".json"
    changed = []
    for member in members:
        if member.name == "manifest.json":
            member = g.Member(member.name, _dumps(manifest(json.loads(member.data))))
        elif member.name == config_name:
            member = g.Member(member.name, _dumps(config(json.loads(member.data))))
        changed.append(member)
    return g.tar_bytes(changed)


def _oci_with(compression: g.Compression, index: Callable[[Any], Any],
              manifest: Callable[[Any], Any], config: Callable[[Any], Any]) -> bytes:
    """An OCI archive whose documents are changed, digests and sizes recomputed up the chain
    (config → manifest → index), so each changed document is what the reader gets to."""
    members, built = g.oci_layout_members(seed_image(), compression=compression)
    blobs = {m.name: m.data for m in members}
    config_doc = config(json.loads(blobs.pop(g.blob_path(built.config_digest))))
    config_bytes = _dumps(config_doc)
    manifest_doc = json.loads(blobs.pop(g.blob_path(built.manifest_digest or "")))
    manifest_doc["config"].update(digest=g.sha256(config_bytes), size=len(config_bytes))
    manifest_bytes = _dumps(manifest(manifest_doc))
    index_doc = json.loads(blobs.pop("index.json"))
    index_doc["manifests"][0].update(digest=g.sha256(manifest_bytes), size=len(manifest_bytes))
    blobs[g.blob_path(g.sha256(config_bytes))] = config_bytes
    blobs[g.blob_path(g.sha256(manifest_bytes))] = manifest_bytes
    blobs["index.json"] = _dumps(index(index_doc))
    return g.tar_bytes([g.Member(name, data) for name, data in sorted(blobs.items())])


def _same(document: Any) -> Any:
    return document


@examples(1.5)
@given(document=st.sampled_from(["manifest.json", "config"]), data=st.data())
def test_mutated_docker_documents(tmp_path_factory: pytest.TempPathFactory, document: str,
                                  data: st.DataObject) -> None:
    def mutate(doc: Any) -> Any:
        return data.draw(json_mutated(doc), label=document)

    archive = _legacy_with(mutate if document == "manifest.json" else _same,
                           mutate if document == "config" else _same)
    directory = tmp_path_factory.mktemp("docker-json", numbered=True)
    inspect(write(directory, "image.tar", archive))


@examples(1.5)
@given(document=st.sampled_from(["index", "manifest", "config"]),
       compression=st.sampled_from(["gzip", "plain"]), data=st.data())
def test_mutated_oci_documents(tmp_path_factory: pytest.TempPathFactory, document: str,
                               compression: g.Compression, data: st.DataObject) -> None:
    def mutate(doc: Any) -> Any:
        return data.draw(json_mutated(doc), label=document)

    archive = _oci_with(compression, *(mutate if name == document else _same
                                       for name in ("index", "manifest", "config")))
    directory = tmp_path_factory.mktemp("oci-json", numbered=True)
    inspect(write(directory, "image.tar", archive))


@pytest.mark.parametrize("text", [
    b"[" * 100_000, b"{\"a\":" * 50_000, b"1" * 5000, b"\"\\ud800\"", b"\xff\xfe{}", b"",
    b"[1e999999]", b"{\"manifests\": " + b"[" * 3000 + b"]" * 3000 + b"}",
])
def test_pathological_json(tmp_path: Path, text: bytes) -> None:
    """Deep nesting, huge numbers, lone surrogates, not UTF-8: a corrupt archive, not a crash."""
    for where in ("manifest.json", "index.json"):
        members, _ = (g.docker_legacy_members(seed_image()) if where == "manifest.json"
                      else g.oci_layout_members(seed_image()))
        members = [g.Member(m.name, text) if m.name == where else m for m in members]
        outcome = inspect(write(tmp_path, "image.tar", g.tar_bytes(members)))
        assert outcome.code in (ExitCode.CORRUPT_ARCHIVE, ExitCode.NOT_AN_IMAGE), outcome


# --------------------------------------------------------------------------- truncations


def _end_of_members(archive: bytes) -> int:
    """Where the end-of-archive marker of a tar starts."""
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.getmembers()
        return tar.offset


@pytest.mark.parametrize("name", sorted(ARCHIVES))
def test_outer_tar_cut_at_every_block(tmp_path: Path, name: str,
                                      reference_reports: dict[str, dict[str, Any]]) -> None:
    """Cut before its end marker an archive is corrupt (empty: not an image); cut after the
    marker's first block it is whole."""
    archive = _ARCHIVE_BYTES[name]
    whole_from = _end_of_members(archive) + 512
    for cut in range(0, len(archive) + 1, 512):
        outcome = inspect(write(tmp_path, "cut.tar", archive[:cut]))
        if cut == 0:
            assert outcome.code == ExitCode.NOT_AN_IMAGE, (cut, outcome)
        elif cut < whole_from:
            assert outcome.code == ExitCode.CORRUPT_ARCHIVE, (cut, outcome)
        else:
            assert comparable(outcome.report) == comparable(reference_reports[name]), cut


def _layer_whole_from(layer: bytes) -> int:
    """A layer cut after the first block of its end marker is whole."""
    return _end_of_members(layer) + 512


def _clean_block_cuts(layer: bytes) -> set[int]:
    """The block-aligned cuts after which a layer still ends cleanly, as Go's archive/tar reads
    it: where a header starts (a PAX or GNU long-name header, or the entry's own header after
    one), and from the end-of-archive marker on. A cut inside a header or data is an error."""
    cuts = {0}
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        for info in tar:
            cuts.update((info.offset, info.offset_data - 512))
        end = tar.offset
    return cuts | set(range(end, len(layer) + 1))


@pytest.mark.parametrize("index", [0, 1, 2])
def test_plain_layer_cut_at_every_block(tmp_path: Path, index: int,
                                        reference_reports: dict[str, dict[str, Any]]) -> None:
    """With digests recomputed, the parser meets the cut: corrupt inside a header or data,
    the entries so far where a header would start, all of them after the end marker; an empty
    blob is an empty layer."""
    layer = seed_layers()[index]
    whole_from = _layer_whole_from(layer)
    clean = _clean_block_cuts(layer)
    assert len(clean) > 3  # the seed has headers to end at before its end marker
    full = reference_reports["oci-archive-plain"]["layers"][index]
    counts = []
    for cut in range(0, len(layer) + 1, 512):
        archive = oci_with_blob("plain", index, layer[:cut])
        outcome = inspect(write(tmp_path, "cut.tar", archive))
        if cut not in clean:
            assert outcome.code == ExitCode.CORRUPT_ARCHIVE, (cut, outcome)
            continue
        assert outcome.code == ExitCode.OK, (cut, outcome)
        assert outcome.report is not None
        counts.append(outcome.report["layers"][index]["entry_count"])
        if cut == 0 or cut >= whole_from:
            assert counts[-1] == (0 if cut == 0 else full["entry_count"]), cut
    assert counts == sorted(counts) and counts[-1] == full["entry_count"]


@pytest.mark.parametrize("verify", [True, False])
def test_legacy_layer_cut_at_every_block(tmp_path: Path, verify: bool) -> None:
    """Cut inside a docker-archive (its member shrunk): the parser or the diff_id says so."""
    members, _ = g.docker_legacy_members(seed_image())
    victim = next(m for m in members if m.name.endswith("/layer.tar"))
    clean = _clean_block_cuts(victim.data)
    for cut in range(512, len(victim.data), 512):
        changed = [g.Member(m.name, m.data[:cut]) if m is victim else m for m in members]
        outcome = inspect(write(tmp_path, "cut.tar", g.tar_bytes(changed)),
                          *([] if verify else ["--no-verify"]))
        if cut not in clean:
            assert outcome.code == ExitCode.CORRUPT_ARCHIVE, (cut, outcome)
        else:
            assert outcome.code == (ExitCode.DIGEST_MISMATCH if verify else ExitCode.OK), cut


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_compressed_layer_cut_at_every_byte(compression: g.Compression) -> None:
    """Every cut inside a gzip or zstd stream (header, blocks, trailer, between members or
    frames) is CorruptArchive, in both reading modes."""
    layer = seed_layers()[0]
    split = _end_of_members(layer) // 2  # the first member or frame ends inside an entry
    blob = g.compress(layer[:split], compression) + g.compress(layer[split:], compression)
    for cut in range(len(blob)):
        with pytest.raises(ImagescopeError) as caught:
            read_blob(blob[:cut], LAYER_MEDIA_TYPES[compression], seekable=False)
        assert caught.value.exit_code == ExitCode.CORRUPT_ARCHIVE, cut
    read_blob(blob, LAYER_MEDIA_TYPES[compression], seekable=False)


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_compressed_layer_cut_through_the_cli(tmp_path: Path, compression: g.Compression) -> None:
    blob = g.compress(seed_layers()[0], compression)
    for cut in range(0, len(blob), max(1, len(blob) // 40)):
        outcome = inspect(write(tmp_path, "cut.tar", oci_with_blob(compression, 0, blob[:cut])))
        assert outcome.code == ExitCode.CORRUPT_ARCHIVE, (cut, outcome)


def test_every_exit_code_is_documented() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    table = {line.split("|")[1].strip() for line in readme.splitlines()
             if line.startswith("| ") and line.split("|")[1].strip().isdigit()}
    assert {str(int(code)) for code in ExitCode} <= table
