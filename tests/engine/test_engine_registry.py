"""Images the engine built and pushed, read back from the registry with no engine: the same
figures, byte for byte, as the engine's own `docker save` archive of the image, for the image
`docker push` stored (gzip layers) and for one platform of a multi-platform index made of it."""

from __future__ import annotations

import gzip
import hashlib
import json
import tarfile
from pathlib import Path
from typing import Any

import docker
import pytest

from fixtures import imagegen
from tests.cli import run_process
from tests.engine.support import SessionImages
from tests.engine.test_engine_inspect import WASTE_DOCKERFILE, push
from tests.registry.servers import push_blob, put_manifest
from tests.registry.support import figures

pytestmark = pytest.mark.engine

NO_ENGINE = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _report(*args: str) -> dict[str, Any]:
    result = run_process("inspect", *args, "--format", "json", "--no-cache", env=NO_ENGINE)
    assert result.exit_code == 0, result.stderr
    loaded: dict[str, Any] = json.loads(result.stdout)
    return loaded


@pytest.fixture(scope="module")
def saved(images: SessionImages, docker_client: docker.DockerClient,
          tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """An image with every kind of waste, and its `docker save` archive."""
    built = images.build("registry-waste", WASTE_DOCKERFILE)
    archive = tmp_path_factory.mktemp("saved") / "image.tar"
    with archive.open("wb") as out:
        for chunk in docker_client.images.get(built).save(named=True):
            out.write(chunk)
    return built, archive


def test_pushed_image_has_the_figures_of_its_saved_archive(
        saved: tuple[str, Path], docker_client: docker.DockerClient, images: SessionImages,
        registry: str) -> None:
    built, archive = saved
    remote = images.tag("pushed", repository_prefix=f"{registry}/imagescope")
    repository, tag = remote.rsplit(":", 1)
    assert docker_client.images.get(built).tag(repository, tag)
    digest = push(docker_client, repository, tag)
    from_registry = _report(f"docker://{remote}")
    from_archive = _report(str(archive))
    assert figures(from_registry, storage_too=False) == figures(from_archive,
                                                                storage_too=False)
    assert from_registry["image"]["repo_digest"] == f"{repository}@{digest}"
    assert {layer["media_type"] for layer in from_registry["layers"]} == {
        "application/vnd.docker.image.rootfs.diff.tar.gzip"}  # what docker push stores


def _saved_image(archive: Path) -> tuple[bytes, list[bytes]]:
    """The config and the layer tars of a (legacy) `docker save` archive of one image."""
    with tarfile.open(archive) as tar:
        def read(name: str) -> bytes:
            member = tar.extractfile(name)
            assert member is not None
            return member.read()

        manifest = json.loads(read("manifest.json"))[0]
        return read(manifest["Config"]), [read(name) for name in manifest["Layers"]]


def test_one_platform_of_an_index_has_the_figures_of_its_saved_archive(
        saved: tuple[str, Path], registry: str) -> None:
    _, archive = saved
    origin, repository = f"http://{registry}", "imagescope/multi"
    config, layers = _saved_image(archive)
    blobs = [gzip.compress(layer, mtime=0) for layer in layers]
    for blob in [config, *blobs]:
        push_blob(origin, repository, blob)
    amd64 = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": _digest(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": _digest(blob), "size": len(blob)} for blob in blobs],
    }).encode()
    put_manifest(origin, repository, _digest(amd64), amd64, OCI_MANIFEST)
    other = imagegen.ImageSpec(layers=[imagegen.layer_tar([imagegen.file("x", size=10)])],
                               architecture="arm64", variant="v8")
    members, _ = imagegen.oci_layout_members(other)
    arm = next(m.data for m in members if m.name.startswith("blobs/")
               and m.data.startswith(b"{") and json.loads(m.data).get("mediaType") == OCI_MANIFEST)
    for member in members:
        if member.name.startswith("blobs/") and member.data is not arm:
            push_blob(origin, repository, member.data)
    put_manifest(origin, repository, _digest(arm), arm, OCI_MANIFEST)
    index = json.dumps({"schemaVersion": 2,
                        "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": [
                            {"mediaType": OCI_MANIFEST, "digest": _digest(arm),
                             "size": len(arm),
                             "platform": {"os": "linux", "architecture": "arm64",
                                          "variant": "v8"}},
                            {"mediaType": OCI_MANIFEST, "digest": _digest(amd64),
                             "size": len(amd64),
                             "platform": {"os": "linux", "architecture": "amd64"}}]}).encode()
    put_manifest(origin, repository, "1", index, "application/vnd.oci.image.index.v1+json")
    from_registry = _report(f"docker://{registry}/{repository}:1", "--platform", "linux/amd64")
    assert figures(from_registry, storage_too=False) == figures(_report(str(archive)),
                                                                storage_too=False)
    assert from_registry["image"]["repo_digest"].endswith(_digest(amd64))


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()
