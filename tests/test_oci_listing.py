"""What an OCI layout lists: images only (artifacts are not images), each once, by a name or digest
that the selector then accepts. Layouts are written by hand here, blob by blob."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fixtures import imagegen as g
from imagescope.errors import ExitCode

from .hostile import inspect

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
EMPTY = "application/vnd.oci.empty.v1+json"


class Layout:
    """An OCI layout directory built blob by blob."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.entries: list[dict[str, Any]] = []
        (root / "blobs" / "sha256").mkdir(parents=True)
        (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')

    def blob(self, data: bytes) -> dict[str, Any]:
        digest = g.sha256(data)
        (self.root / g.blob_path(digest)).write_bytes(data)
        return {"digest": digest, "size": len(data)}

    def image(self, size: int) -> str:
        """An image of one layer holding one file of `size` bytes; its manifest's digest."""
        layer = g.layer_tar([g.file("data", size=size)])
        config = g.ImageSpec(layers=[layer]).config_bytes()
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                               **self.blob(config)},
                    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                **self.blob(layer)}]}
        return str(self.blob(json.dumps(manifest).encode())["digest"])

    def artifact(self, config_type: str, artifact_type: str | None = None) -> str:
        manifest: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                                    "config": {"mediaType": config_type, **self.blob(b"{}")},
                                    "layers": [{"mediaType": "text/spdx+json",
                                                **self.blob(b'{"spdx": 1}')}]}
        if artifact_type:
            manifest["artifactType"] = artifact_type
        return str(self.blob(json.dumps(manifest).encode())["digest"])

    def index(self, children: list[str]) -> str:
        doc = {"schemaVersion": 2, "mediaType": OCI_INDEX,
               "manifests": [self.descriptor(c) for c in children]}
        return str(self.blob(json.dumps(doc).encode())["digest"])

    def descriptor(self, digest: str, media_type: str = OCI_MANIFEST) -> dict[str, Any]:
        path = self.root / g.blob_path(digest)
        return {"mediaType": media_type, "digest": digest, "size": path.stat().st_size}

    def add(self, digest: str, name: str | None = None, media_type: str = OCI_MANIFEST,
            **extra: Any) -> None:
        entry = {**self.descriptor(digest, media_type), **extra}
        if name is not None:
            entry["annotations"] = {"org.opencontainers.image.ref.name": name}
        self.entries.append(entry)
        (self.root / "index.json").write_text(json.dumps(
            {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": self.entries}))


def test_an_image_beside_its_sbom_and_signature_is_the_one_image(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "oci")
    image = layout.image(700)
    layout.add(image, "1.0")
    layout.add(layout.artifact(EMPTY, "application/spdx+json"))  # an SBOM, by artifactType
    layout.add(layout.artifact("application/vnd.dev.cosign.simplesigning.v1+json"), "sig")
    outcome = inspect(f"oci:{layout.root}")
    assert outcome.code == ExitCode.OK, outcome.stderr
    assert outcome.report is not None and outcome.report["summary"]["total_bytes"] == 700


def test_a_layout_of_artifacts_only_holds_no_image(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "oci")
    layout.add(layout.artifact("application/vnd.cncf.helm.config.v1+json"), "chart")
    sbom = layout.artifact(EMPTY, "application/spdx+json")
    layout.add(sbom, artifactType="application/spdx+json")
    outcome = inspect(f"oci:{layout.root}")
    assert outcome.code == ExitCode.NOT_AN_IMAGE, outcome
    assert ("holds no container image, only artifacts (application/spdx+json, "
            "application/vnd.cncf.helm.config.v1+json)") in outcome.stderr


def test_each_image_is_listed_once_by_a_name_that_picks_it(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "oci")
    one, two = layout.image(100), layout.image(200)
    layout.add(one, "1.0")
    layout.add(one, "latest")  # one manifest, two names
    layout.add(two, "2.0")
    outcome = inspect(f"oci:{layout.root}")
    assert outcome.code == ExitCode.USAGE
    assert "holds several images (1.0, 2.0)" in outcome.stderr
    for name, size in (("1.0", 100), ("latest", 100), ("2.0", 200)):
        picked = inspect(f"oci:{layout.root}:{name}")
        assert picked.code == ExitCode.OK, picked.stderr
        assert picked.report is not None and picked.report["summary"]["total_bytes"] == size


def test_a_name_on_two_manifests_is_ambiguous(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "oci")
    one, two = layout.image(100), layout.image(200)
    layout.add(one, "latest")
    layout.add(two, "latest")
    listed = inspect(f"oci:{layout.root}")
    assert listed.code == ExitCode.USAGE and f"({min(one, two)}, {max(one, two)})" in listed.stderr
    named = inspect(f"oci:{layout.root}:latest")
    assert named.code == ExitCode.USAGE
    assert f"the name 'latest' is ambiguous: it names {min(one, two)} and {max(one, two)}" \
        in named.stderr


def test_every_digest_the_error_offers_is_accepted(tmp_path: Path) -> None:
    """A nested index lists its children by digest; each picks its image, with or without @."""
    layout = Layout(tmp_path / "oci")
    one, two = layout.image(100), layout.image(200)
    layout.add(layout.index([one, two]), media_type=OCI_INDEX)
    listed = inspect(f"oci:{layout.root}")
    assert listed.code == ExitCode.USAGE
    assert f"holds several images ({min(one, two)}, {max(one, two)})" in listed.stderr
    for digest, size in ((one, 100), (two, 200)):
        for selector in (digest, "@" + digest):
            picked = inspect(f"oci:{layout.root}:{selector}")
            assert picked.code == ExitCode.OK, picked.stderr
            assert picked.report is not None
            assert picked.report["summary"]["total_bytes"] == size
    missing = inspect(f"oci:{layout.root}:sha256:{'0' * 64}")
    assert missing.code == ExitCode.IMAGE_NOT_FOUND


def test_the_same_in_an_oci_archive(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "oci")
    one, two = layout.image(100), layout.image(200)
    layout.add(layout.index([one, two]), media_type=OCI_INDEX)
    members = [g.Member(str(p.relative_to(layout.root)), p.read_bytes())
               for p in sorted(layout.root.rglob("*")) if p.is_file()]
    archive = tmp_path / "image.tar"
    archive.write_bytes(g.tar_bytes(members))
    picked = inspect(f"oci-archive:{archive}:{two}")
    assert picked.code == ExitCode.OK, picked.stderr
    assert picked.report is not None and picked.report["summary"]["total_bytes"] == 200
