"""In a `docker save` archive a layer file's compression is its magic bytes' business: LayerSources
(go-containerregistry's tarball writer, `test_image_2` of its test bundle) and the OCI manifest
beside manifest.json describe the registry's blob, not the file in the archive."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fixtures import imagegen as g
from imagescope.errors import ExitCode

from .hostile import comparable, inspect, write

LAYERS = [g.layer_tar([g.dir("bin"), g.file("bin/sh", size=1000)]),
          g.layer_tar([g.file("app/main", size=300)])]
IMAGE = g.ImageSpec(layers=LAYERS)
DECLARED = ["application/vnd.docker.image.rootfs.diff.tar.gzip",
            "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
            "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
            "application/x-not-a-layer-type"]


def with_manifest(members: list[g.Member], change) -> bytes:  # type: ignore[no-untyped-def]
    out = []
    for member in members:
        if member.name == "manifest.json":
            doc = json.loads(member.data)
            change(doc[0])
            member = g.Member("manifest.json", json.dumps(doc).encode())
        out.append(member)
    return g.tar_bytes(out)


@pytest.mark.parametrize("media_type", DECLARED)
def test_layer_sources_do_not_decide_how_a_plain_file_is_read(tmp_path: Path,
                                                               media_type: str) -> None:
    members, built = g.docker_legacy_members(IMAGE)
    plain = inspect(write(tmp_path, "plain.tar", g.tar_bytes(members)))

    def declare(entry: dict) -> None:  # type: ignore[type-arg]
        entry["LayerSources"] = {diff_id: {"mediaType": media_type, "size": 1234,
                                           "digest": "sha256:" + "ab" * 32,
                                           "urls": ["https://example.invalid/blob"]}
                                 for diff_id in built.diff_ids}

    declared = inspect(write(tmp_path, "declared.tar", with_manifest(members, declare)))
    assert plain.code == declared.code == ExitCode.OK, declared.stderr
    assert comparable(declared.report) == comparable(plain.report)
    assert declared.report is not None
    assert declared.report["summary"]["total_bytes"] == 1000 + 300


def test_a_docker25_oci_manifest_that_says_gzip_does_not_either(tmp_path: Path) -> None:
    members, built = g.docker25_members(IMAGE)
    assert built.manifest_digest is not None
    manifest_key = g.blob_path(built.manifest_digest)
    manifest = json.loads(next(m.data for m in members if m.name == manifest_key))
    for layer in manifest["layers"]:
        layer["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip"
    data = json.dumps(manifest).encode()
    digest = g.sha256(data)
    changed = []
    for member in members:
        if member.name == manifest_key:
            member = g.Member(g.blob_path(digest), data)
        elif member.name == "index.json":
            index = json.loads(member.data)
            index["manifests"][0].update(digest=digest, size=len(data))
            member = g.Member("index.json", json.dumps(index).encode())
        changed.append(member)
    outcome = inspect(write(tmp_path, "docker25.tar", g.tar_bytes(changed)))
    assert outcome.code == ExitCode.OK, outcome.stderr
    assert outcome.report is not None
    assert outcome.report["image"]["repo_digest"] == digest
    assert outcome.report["summary"]["total_bytes"] == 1300
