"""Layers mapped to Dockerfile lines from the SLSA provenance BuildKit attaches (mode=max), no
Dockerfile given: attestation documents written here as BuildKit writes them (an in-toto
statement in an attestation manifest beside the image's, in its index), in OCI layouts,
archives and a real registry; the expected lines worked out by hand from the Dockerfile text."""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from fixtures import imagegen as g
from imagescope.analysis.dockerfile_map import location
from imagescope.analysis.provenance import provenance_map
from imagescope.analysis.report import Report, with_dockerfile, with_provenance
from imagescope.api import analyze
from imagescope.dockerfile import parse_dockerfile_text
from imagescope.errors import ExitCode
from imagescope.sources import load
from imagescope.store import report_codec
from tests.cli import run_cli

DOCKERFILE = """\
# syntax=docker/dockerfile:1
ARG VERSION=1
FROM busybox AS build
RUN echo a > /x \\
  && echo b >> /x
FROM busybox
WORKDIR /app
COPY --from=build /x /app/x
RUN touch /app/made \\
    && chmod -R a+r /app
COPY . /app/ctx
CMD ["sh"]
"""
# The image's layers, bottom-up: busybox's two, WORKDIR, COPY --from, RUN, COPY . — and where
# each is in DOCKERFILE.
EXPECTED = ["Dockerfile:6", "Dockerfile:6", "Dockerfile:7", "Dockerfile:8", "Dockerfile:9-10",
            "Dockerfile:11"]
LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
V02, V1 = "https://slsa.dev/provenance/v0.2", "https://slsa.dev/provenance/v1"
BUILDKIT_METADATA = "https://mobyproject.org/buildkit@v1#metadata"


def layers() -> list[bytes]:
    return [g.layer_tar([g.dir("bin"), g.file("bin/busybox", size=4000, mode=0o755)]),
            g.layer_tar([g.dir("etc"), g.file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n")]),
            g.layer_tar([g.dir("app")]),
            g.layer_tar([g.dir("app"), g.file("app/x", b"a\nb\n")]),
            g.layer_tar([g.dir("app"), g.file("app/made", b"")]),
            g.layer_tar([g.dir("app"), g.dir("app/ctx"), g.file("app/ctx/main.py", size=900)])]


HISTORY = [g.Step("/bin/sh -c #(nop) ADD file:0123 in / "), g.Step("/bin/sh -c #(nop) ADD x in /"),
           g.Step("WORKDIR /app"), g.Step("COPY /x /app/x # buildkit"),
           g.Step("RUN /bin/sh -c touch /app/made     && chmod -R a+r /app # buildkit"),
           g.Step("COPY . /app/ctx # buildkit"),
           g.Step('CMD ["sh"]', empty_layer=True)]


def descriptors(blobs: list[bytes]) -> list[dict[str, Any]]:
    return [{"mediaType": LAYER_MEDIA_TYPE, "digest": g.sha256(b), "size": len(b)} for b in blobs]


def at(*lines: int) -> dict[str, Any]:
    """A step's `source.locations` entry: one location per line range (first, last), in source 0
    (which Go's encoding/json omits, being zero)."""
    return {"locations": [{"ranges": [{"start": {"line": first}, "end": {"line": last}}]}
                          for first, last in zip(lines[::2], lines[1::2], strict=True)]}


def buildkit_metadata(blobs: list[bytes], dockerfile: str = DOCKERFILE) -> dict[str, Any]:
    """`source` and `layers` as BuildKit fills them: steps numbered inputs first (its depth
    first walk), each output's layer chain the whole stack of its snapshot, bottom-up."""
    image = descriptors(blobs)
    build_layer = descriptors([g.layer_tar([g.file("x", b"a\nb\n")])])  # not in the image
    return {
        "vcs": {"source": "https://example.invalid/app.git", "revision": "123456"},
        "source": {
            "locations": {
                "step0": at(3, 3, 6, 6),  # busybox: one source op for both FROMs
                "step1": at(4, 5),
                "step2": {},  # local://context has no source mapping
                "step3": at(7, 7),
                "step4": at(8, 8),
                "step5": at(9, 10),
                "step6": at(11, 11),
            },
            "infos": [{"filename": "Dockerfile", "language": "Dockerfile",
                       "data": base64.b64encode(dockerfile.encode()).decode(),
                       "llbDefinition": [{"id": "step0", "op": {"Op": {"source": {
                           "identifier": "local://dockerfile"}}}}]}],
        },
        "layers": {
            "step0:0": [image[:2]],
            "step1:0": [image[:2] + build_layer],
            "step3:0": [image[:3]],
            "step4:0": [image[:4]],
            "step5:0": [image[:5]],
            "step6:0": [image[:6]],
        },
    }


def statement(version: str, metadata: dict[str, Any] | None, subject: str = "") -> dict[str, Any]:
    """An in-toto statement of BuildKit's SLSA provenance, v0.2 or v1 (`v1-early`: the v1 of
    the BuildKits that kept v0.2's metadata key), mode=max when `metadata` is given."""
    args = {"build-arg:VERSION": "1"}
    head = {"_type": "https://in-toto.io/Statement/v0.1",
            "predicateType": V02 if version == "v0.2" else V1,
            "subject": [{"name": "_", "digest": {"sha256": subject.removeprefix("sha256:")}}]}
    materials = [{"uri": "pkg:docker/busybox@latest?platform=linux%2Famd64",
                  "digest": {"sha256": "1" * 64}}]
    if version == "v0.2":
        meta: dict[str, Any] = {"buildInvocationID": "rpv7a389uzil5lqmrgwhijwjz",
                                "buildStartedOn": "2024-05-01T10:00:00Z",
                                "buildFinishedOn": "2024-05-01T10:01:00Z",
                                "completeness": {"parameters": True, "environment": True,
                                                 "materials": False},
                                "reproducible": False}
        if metadata is not None:
            meta[BUILDKIT_METADATA] = metadata
        return {**head, "predicate": {
            "builder": {"id": ""}, "buildType": "https://mobyproject.org/buildkit@v1",
            "materials": materials,
            "invocation": {"configSource": {"entryPoint": "Dockerfile"},
                           "parameters": {"frontend": "dockerfile.v0", "args": args,
                                          "locals": [{"name": "context"},
                                                     {"name": "dockerfile"}]},
                           "environment": {"platform": "linux/amd64"}},
            "metadata": meta}}
    run: dict[str, Any] = {"invocationID": "rpv7a389uzil5lqmrgwhijwjz",
                           "startedOn": "2024-05-01T10:00:00Z",
                           "finishedOn": "2024-05-01T10:01:00Z",
                           "buildkit_completeness": {"request": True,
                                                     "resolvedDependencies": False}}
    if metadata is not None:
        run["buildkit_metadata" if version == "v1" else BUILDKIT_METADATA] = metadata
    return {**head, "predicate": {
        "buildDefinition": {
            "buildType": "https://github.com/moby/buildkit/blob/master/docs/attestations/"
                         "slsa-definitions.md",
            "externalParameters": {"configSource": {"path": "Dockerfile"},
                                   "request": {"frontend": "dockerfile.v0", "args": args}},
            "internalParameters": {"builderPlatform": "linux/amd64"},
            "resolvedDependencies": materials},
        "runDetails": {"builder": {"id": ""}, "metadata": run}}}


@dataclass
class Built:
    members: list[g.Member]
    manifest_digest: str
    statement_digest: str
    layer_digests: list[str] = field(default_factory=list)


def build(version: str = "v0.2", *, nested: bool = True,
          edit: Callable[[dict[str, Any]], None] | None = None,
          raw_statement: bytes | None = None, declared_size: int | None = None,
          keep_statement: bool = True) -> Built:
    """The image of DOCKERFILE with its provenance attestation, as an OCI layout's members:
    `index.json` → an index (`nested`, as buildx's OCI output) or directly (flat) → the image
    manifest and the attestation manifest (`unknown/unknown`, the annotations that name the
    image's manifest) → its in-toto layer, the statement (`edit`ed, or `raw_statement`)."""
    blobs = [g.gzip_bytes(layer) for layer in layers()]
    image = g.ImageSpec(layers=layers(), history=HISTORY, cmd=["sh"])
    config = image.config_bytes()
    members: dict[str, bytes] = {}

    def put(data: bytes) -> dict[str, Any]:
        members[g.blob_path(g.sha256(data))] = data
        return {"digest": g.sha256(data), "size": len(data)}

    for blob in blobs:
        put(blob)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": g.MT_OCI_MANIFEST,
                           "config": {"mediaType": g.MT_OCI_CONFIG, **put(config)},
                           "layers": descriptors(blobs)}).encode()
    image_desc = {"mediaType": g.MT_OCI_MANIFEST, **put(manifest),
                  "platform": {"architecture": "amd64", "os": "linux"}}
    doc = statement(version, buildkit_metadata(blobs), image_desc["digest"])
    if edit is not None:
        edit(doc)
    data = raw_statement if raw_statement is not None else json.dumps(doc).encode()
    statement_desc = {"mediaType": "application/vnd.in-toto+json", **put(data),
                      "annotations": {"in-toto.io/predicate-type": doc["predicateType"]}}
    if declared_size is not None:
        statement_desc["size"] = declared_size
    if not keep_statement:
        del members[g.blob_path(statement_desc["digest"])]
    attestation_config = json.dumps({"architecture": "unknown", "os": "unknown", "config": {},
                                     "rootfs": {"type": "layers",
                                                "diff_ids": [statement_desc["digest"]]}}).encode()
    attestation = json.dumps({"schemaVersion": 2, "mediaType": g.MT_OCI_MANIFEST,
                              "config": {"mediaType": g.MT_OCI_CONFIG, **put(attestation_config)},
                              "layers": [statement_desc]}).encode()
    attestation_desc = {"mediaType": g.MT_OCI_MANIFEST, **put(attestation),
                        "annotations": {"vnd.docker.reference.digest": image_desc["digest"],
                                        "vnd.docker.reference.type": "attestation-manifest"},
                        "platform": {"architecture": "unknown", "os": "unknown"}}
    name = {"org.opencontainers.image.ref.name": "latest"}
    if nested:
        inner = json.dumps({"schemaVersion": 2, "mediaType": g.MT_OCI_INDEX,
                            "manifests": [image_desc, attestation_desc]}).encode()
        top = [{"mediaType": g.MT_OCI_INDEX, **put(inner), "annotations": name}]
    else:
        top = [{**image_desc, "annotations": name}, attestation_desc]
    return Built([*(g.Member(n, d) for n, d in sorted(members.items())),
                  g.Member("index.json", json.dumps({"schemaVersion": 2,
                                                     "mediaType": g.MT_OCI_INDEX,
                                                     "manifests": top}).encode()),
                  g.Member("oci-layout", b'{"imageLayoutVersion": "1.0.0"}')],
                 str(image_desc["digest"]), str(statement_desc["digest"]),
                 [g.sha256(b) for b in blobs])


def layout(tmp_path: Path, built: Built, name: str = "oci") -> Path:
    root = tmp_path / name
    g._write_dir(root, built.members)
    return root


def report_of(reference: str | Path) -> Report:
    return analyze(load(str(reference)))


def locations(report: Report) -> list[str | None]:
    mapped = report.dockerfile
    assert mapped is not None
    return [location(source, mapped.path) for source in mapped.sources]


def provenance_warnings(report: Report) -> list[str]:
    return [w for w in report.warnings if "provenance" in w]


def check_mapping(report: Report) -> None:
    """The layers of DOCKERFILE's image at their lines: the base's at the final FROM, the
    COPY --from naming the stage it copies from."""
    mapped = report.dockerfile
    assert mapped is not None and mapped.mismatch is None, report.warnings
    assert mapped.path == "Dockerfile"
    assert locations(report) == EXPECTED
    sources = mapped.sources
    assert all(s is not None for s in sources)
    assert [s.base for s in sources if s is not None] == [True, True, False, False, False, False]
    assert [s.instruction.original for s in sources if s is not None] == [
        "FROM busybox", "FROM busybox", "WORKDIR /app", "COPY --from=build /x /app/x",
        "RUN touch /app/made     && chmod -R a+r /app", "COPY . /app/ctx"]
    copied = sources[3]
    assert copied is not None and copied.from_stage is not None
    assert (copied.from_stage.name, copied.from_stage.start.start_line,
            copied.from_stage.end_line) == ("build", 3, 5)
    assert all(s is not None and s.from_stage is None for i, s in enumerate(sources) if i != 3)
    assert provenance_warnings(report) == []


# --------------------------------------------------------------------------- sources


@pytest.mark.parametrize("nested", [True, False], ids=["nested-index", "flat-index"])
@pytest.mark.parametrize("version", ["v0.2", "v1", "v1-early"])
def test_each_layer_maps_to_its_lines_from_an_oci_layout(tmp_path: Path, version: str,
                                                         nested: bool) -> None:
    built = build(version, nested=nested)
    root = layout(tmp_path, built)
    report = report_of(f"oci:{root}")
    check_mapping(report)
    assert report.image.repo_digest == built.manifest_digest
    if not nested:  # the attestation is found whatever the name picks among the entries
        check_mapping(report_of(f"oci:{root}:latest"))


def test_an_oci_archive_and_a_compressed_one_map_the_same(tmp_path: Path) -> None:
    built = build("v1")
    archive = tmp_path / "image.tar"
    g.write_tar(archive, built.members)
    check_mapping(report_of(f"oci-archive:{archive}"))
    packed = tmp_path / "image.tar.gz"
    packed.write_bytes(gzip.compress(archive.read_bytes()))
    check_mapping(report_of(packed))  # read as one stream


def test_a_min_mode_provenance_maps_nothing_and_says_nothing(tmp_path: Path) -> None:
    def minimal(doc: dict[str, Any]) -> None:
        doc["predicate"]["metadata"][BUILDKIT_METADATA] = {"vcs": {"revision": "123456"}}

    report = report_of(f"oci:{layout(tmp_path, build(edit=minimal))}")
    assert report.dockerfile is None
    assert report.warnings == []


def test_an_image_without_provenance_maps_nothing(tmp_path: Path) -> None:
    root = tmp_path / "oci"
    g.write_oci_layout(root, g.ImageSpec(layers=layers(), history=HISTORY))
    report = report_of(f"oci:{root}")
    assert report.dockerfile is None and report.warnings == []


# --------------------------------------------------------------------------- what does not fit


def _unknown_layer(doc: dict[str, Any]) -> None:
    chains = doc["predicate"]["metadata"][BUILDKIT_METADATA]["layers"]
    chains["step5:0"][0][-1]["digest"] = "sha256:" + "e" * 64  # not the RUN layer's blob


def _no_instruction(doc: dict[str, Any]) -> None:
    doc["predicate"]["metadata"][BUILDKIT_METADATA]["source"]["locations"]["step5"] = at(9, 9)


def _other_dockerfile(doc: dict[str, Any]) -> None:
    info = doc["predicate"]["metadata"][BUILDKIT_METADATA]["source"]["infos"][0]
    edited = DOCKERFILE.replace("WORKDIR /app\n", "WORKDIR /app\nENV A=1\n")
    info["data"] = base64.b64encode(edited.encode()).decode()


def _no_data(doc: dict[str, Any]) -> None:
    del doc["predicate"]["metadata"][BUILDKIT_METADATA]["source"]["infos"][0]["data"]


def _no_infos(doc: dict[str, Any]) -> None:
    del doc["predicate"]["metadata"][BUILDKIT_METADATA]["source"]["infos"]


def _chains_not_lists(doc: dict[str, Any]) -> None:
    doc["predicate"]["metadata"][BUILDKIT_METADATA]["layers"]["step4:0"] = "sha256:1234"


@pytest.mark.parametrize("edit, why", [
    (_unknown_layer, "lists layer 4 (sha256:"),
    (_no_instruction, ("places layer 4's step step5 at line 9 of Dockerfile, where no "
                       "instruction starts and ends")),
    (_other_dockerfile, "places layer 3's step step4 at line 8 of Dockerfile, which holds ENV"),
    (_no_data, "embeds no text of Dockerfile"),
    (_no_infos, "embeds no Dockerfile"),
    (_chains_not_lists, "lists layers of step4:0 that are no list of layer chains"),
], ids=["unknown-layer", "no-instruction", "other-dockerfile", "no-data", "no-infos",
        "malformed-layers"])
def test_what_does_not_fit_is_a_mismatch_never_a_guess(tmp_path: Path, edit: Any,
                                                       why: str) -> None:
    report = report_of(f"oci:{layout(tmp_path, build(edit=edit))}")
    mapped = report.dockerfile
    assert mapped is not None and mapped.mismatch is not None
    assert why in mapped.mismatch
    assert mapped.sources == (None,) * 6
    warnings = provenance_warnings(report)
    assert len(warnings) == 1 and why in warnings[0]


def test_an_unknown_layer_is_a_warning_and_the_cli_exits_0(tmp_path: Path) -> None:
    root = layout(tmp_path, build("v1", edit=lambda doc: doc["predicate"]["runDetails"][
        "metadata"]["buildkit_metadata"]["layers"]["step6:0"][0].pop()))
    result = run_cli("inspect", f"oci:{root}", "--format", "markdown", "--no-cache")
    assert result.exit_code == ExitCode.OK, result.stderr
    assert "provenance attestation does not map its layers" in result.stdout
    assert "lists layer 5" in result.stdout
    assert "Dockerfile:" not in result.stdout.replace("Dockerfile lines", "")


@pytest.mark.parametrize("problem", ["not-json", "not-an-object", "wrong-predicate",
                                     "missing-blob", "too-large", "altered"])
def test_a_malformed_or_missing_statement_is_a_warning_and_the_cli_exits_0(
        tmp_path: Path, problem: str) -> None:
    kwargs: dict[str, Any] = {
        "not-json": {"raw_statement": b'{"_type": "https://in-toto.io/Statement/v0.1", '},
        "not-an-object": {"raw_statement": b'["a statement"]'},
        "wrong-predicate": {"raw_statement": b'{"predicateType": "https://spdx.dev/Document"}'},
        "missing-blob": {"keep_statement": False},
        "too-large": {"declared_size": (16 << 20) + 1},
        "altered": {},
    }[problem]
    built = build(**kwargs)
    root = layout(tmp_path, built)
    if problem == "altered":  # the blob no longer matches the digest naming it
        blob = root / g.blob_path(built.statement_digest)
        blob.write_bytes(blob.read_bytes().replace(b"Dockerfile:", b"Dockerfile;", 1) + b" ")
    report = report_of(f"oci:{root}")
    assert report.dockerfile is None
    warnings = provenance_warnings(report)
    assert len(warnings) == 1 and "provenance attestation is not used" in warnings[0], warnings
    result = run_cli("inspect", f"oci:{root}", "--format", "markdown")
    assert result.exit_code == ExitCode.OK, result.stderr
    assert "provenance attestation is not used" in result.stdout
    assert "Traceback" not in result.stderr


# --------------------------------------------------------------------------- the CLI, the cache


def test_markdown_shows_the_lines_and_the_cached_run_still_does(tmp_path: Path) -> None:
    root = layout(tmp_path, build("v0.2"))
    first = run_cli("inspect", f"oci:{root}", "--format", "markdown", "--stats")
    assert first.exit_code == ExitCode.OK, first.stderr
    for line in ("Dockerfile:6 base image (FROM busybox)", "Dockerfile:7 WORKDIR /app",
                 "Dockerfile:8 COPY --from=build /x /app/x (stage build, lines 3-5)",
                 "Dockerfile:9-10 RUN touch /app/made && chmod -R a+r /app",
                 "Dockerfile:11 COPY . /app/ctx"):
        assert line in first.stdout, first.stdout
    assert "reports from cache" not in first.stderr
    second = run_cli("inspect", f"oci:{root}", "--format", "markdown", "--stats")
    assert second.exit_code == ExitCode.OK, second.stderr
    assert "reports from cache: 1" in second.stderr
    assert second.stdout == first.stdout


def test_a_dockerfile_given_replaces_the_provenances_mapping(tmp_path: Path) -> None:
    root = layout(tmp_path, build("v0.2"))
    given = tmp_path / "app.Dockerfile"
    given.write_text(DOCKERFILE)
    result = run_cli("inspect", f"oci:{root}", "--format", "json", "--no-cache",
                     "--dockerfile", given)
    assert result.exit_code == ExitCode.OK, result.stderr
    mapped = [layer["dockerfile"] for layer in json.loads(result.stdout)["layers"]]
    assert {m["path"] for m in mapped} == {str(given)}
    assert [(m["start_line"], m["end_line"]) for m in mapped] == [
        (6, 6), (6, 6), (7, 7), (8, 8), (9, 10), (11, 11)]


def test_with_dockerfile_drops_the_provenances_mismatch_warning(tmp_path: Path) -> None:
    report = report_of(f"oci:{layout(tmp_path, build(edit=_unknown_layer))}")
    assert len(provenance_warnings(report)) == 1
    good = report_of(f"oci:{layout(tmp_path, build(), 'good')}").dockerfile
    assert good is not None
    replaced = with_dockerfile(report, good)
    assert replaced.dockerfile == good
    assert provenance_warnings(replaced) == []
    assert with_provenance(report, good).warnings == report.warnings  # (no mismatch: no warning)


def test_the_report_codec_keeps_the_mapping(tmp_path: Path) -> None:
    report = report_of(f"oci:{layout(tmp_path, build('v1'))}")
    assert report_codec.decode(report_codec.encode(report)) == report
    mismatched = report_of(f"oci:{layout(tmp_path, build(edit=_unknown_layer), 'bad')}")
    assert report_codec.decode(report_codec.encode(mismatched)) == mismatched


def test_the_image_key_names_the_provenance(tmp_path: Path) -> None:
    def other_revision(doc: dict[str, Any]) -> None:
        doc["predicate"]["metadata"][BUILDKIT_METADATA]["vcs"]["revision"] = "654321"

    one = load(f"oci:{layout(tmp_path, build(), 'one')}")
    two = load(f"oci:{layout(tmp_path, build(edit=other_revision), 'two')}")
    assert one.repo_digest == two.repo_digest  # the same image manifest, another statement
    assert report_codec.image_key(one) != report_codec.image_key(two)


# --------------------------------------------------------------------------- the pure mapping


def _metadata_statement(version: str, edit: Callable[[dict[str, Any]], None]) -> bytes:
    blobs = [g.gzip_bytes(layer) for layer in layers()]
    metadata = buildkit_metadata(blobs)
    edit(metadata)
    return json.dumps(statement(version, metadata)).encode()


def test_a_step_whose_chain_is_its_own_layer_alone_maps_it() -> None:
    """COPY --link copies onto scratch: that step's chain is its one layer; the merge onto the
    stage is a later step with the whole chain."""
    blobs = [g.gzip_bytes(layer) for layer in layers()]

    def linked(metadata: dict[str, Any]) -> None:
        chains = metadata["layers"]
        chains["step4:0"] = [descriptors(blobs[3:4])]  # on scratch
        chains["step7:0"] = [descriptors(blobs[:4])]  # merged (no location of its own)
        chains["step5:0"] = [descriptors(blobs[:5])]

    mapped = provenance_map(_metadata_statement("v1", linked), [g.sha256(b) for b in blobs],
                            parse_dockerfile_text)
    assert mapped is not None and mapped.mismatch is None
    assert [location(s, mapped.path) for s in mapped.sources] == EXPECTED


def test_of_two_steps_ending_at_one_layer_the_first_made_it() -> None:
    """A RUN that changed nothing outputs the chain of its input: the layer is its input's."""
    blobs = [g.gzip_bytes(layer) for layer in layers()]

    def no_change(metadata: dict[str, Any]) -> None:
        metadata["layers"]["step9:0"] = [descriptors(blobs[:3])]  # same chain as step3
        metadata["source"]["locations"]["step9"] = at(9, 10)

    mapped = provenance_map(_metadata_statement("v0.2", no_change),
                            [g.sha256(b) for b in blobs], parse_dockerfile_text)
    assert mapped is not None and mapped.mismatch is None
    assert [location(s, mapped.path) for s in mapped.sources] == EXPECTED


def test_base_layers_no_step_lists_are_the_target_stages_from() -> None:
    """Without the FROM's step among the layers, the layers below every mapped one are the base's;
    `--target build` makes them the build stage's FROM."""
    blobs = [g.gzip_bytes(layer) for layer in layers()]
    digests = [g.sha256(b) for b in blobs]

    def no_base(metadata: dict[str, Any]) -> None:
        del metadata["layers"]["step0:0"]

    mapped = provenance_map(_metadata_statement("v0.2", no_base), digests,
                            parse_dockerfile_text)
    assert mapped is not None and mapped.mismatch is None
    assert [location(s, mapped.path) for s in mapped.sources] == EXPECTED
    targeted = json.loads(_metadata_statement("v0.2", no_base))
    targeted["predicate"]["invocation"]["parameters"]["args"]["target"] = "build"
    mapped = provenance_map(json.dumps(targeted).encode(), digests, parse_dockerfile_text)
    assert mapped is not None and mapped.mismatch is None
    assert [location(s, mapped.path) for s in mapped.sources][:2] == ["Dockerfile:3"] * 2


def test_a_layer_no_step_made_above_mapped_ones_is_a_mismatch() -> None:
    blobs = [g.gzip_bytes(layer) for layer in layers()]
    mapped = provenance_map(_metadata_statement("v0.2", lambda m: m["layers"].pop("step4:0")),
                            [g.sha256(b) for b in blobs], parse_dockerfile_text)
    assert mapped is not None and mapped.sources == (None,) * 6
    assert mapped.mismatch is not None and "lists layer 3 (" in mapped.mismatch


# --------------------------------------------------------------------------- a real registry


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from tests.registry.servers import start_registry

    directory = tmp_path_factory.mktemp("provenance-registry")
    running = start_registry(directory / "servers", directory / "storage", name="plain")
    try:
        yield running
    finally:
        running.stop()


@pytest.mark.registry
@pytest.mark.parametrize("version", ["v0.2", "v1"])
def test_an_image_read_from_a_registry_maps_its_lines(registry: Any, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      version: str) -> None:
    from tests.registry.servers import push_layout

    config = tmp_path / "docker-config"
    config.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(config))  # no credentials of the user's
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    built = build(version)
    tag = version.replace(".", "")
    push_layout(registry.url, "team/provenance", tag, built.members)
    reference = f"docker://{registry.address}/team/provenance:{tag}"
    check_mapping(report_of(reference))
    result = run_cli("inspect", reference, "--format", "markdown", "--no-cache")
    assert result.exit_code == ExitCode.OK, result.stderr
    assert "Dockerfile:9-10 RUN touch /app/made && chmod -R a+r /app" in result.stdout



def test_the_embedded_dockerfile_gets_its_suggestion_without_a_dockerfile(
        tmp_path: Path) -> None:
    import subprocess

    root = layout(tmp_path, build("v0.2"))
    for run in ("first", "cached"):
        result = run_cli("inspect", f"oci:{root}", "--format", "patch")
        assert result.exit_code == ExitCode.OK, (run, result.stderr)
        assert "--- a/Dockerfile\n+++ b/Dockerfile\n" in result.stdout
        assert "+USER 10001:10001" in result.stdout.split("\n")  # the image runs as root
        checkout = tmp_path / run
        checkout.mkdir()
        (checkout / "Dockerfile").write_text(DOCKERFILE)
        applied = subprocess.run(["patch", "-p1", "--forward"], input=result.stdout,
                                 cwd=checkout, capture_output=True, text=True, check=False)
        assert applied.returncode == 0, applied.stdout + applied.stderr
        assert (checkout / "Dockerfile").read_text() == DOCKERFILE.replace(
            "COPY . /app/ctx\n", "COPY . /app/ctx\nUSER 10001:10001\n")
