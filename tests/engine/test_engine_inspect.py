"""`imagescope inspect NAME` against a real engine: exact waste of images the legacy builder made,
layer attribution, and the pull policy against a loopback registry."""

from __future__ import annotations

from typing import Any

import docker
import docker.errors
import pytest

from imagescope.errors import ExitCode
from tests.engine.support import BaseImage, Cli, CliResult, SessionImages, inspect_json

pytestmark = pytest.mark.engine

# Each RUN below makes one layer (ENV makes none: it checks that history is matched to layers
# around empty steps). `docker save` of such an image shows that the legacy builder puts only
# what the command wrote into a layer (no /etc/hostname, no mount points), so every byte is known:
#   /big          65536 = 1024 * 64, removed by `rm /big`
#   /data          3000, rewritten unchanged (chmod copies the whole file up): identical rewrite
#   /conf          2000 zeros, then 2000 bytes of "y\n": same size, other content, overwritten
#   /cache/a       5000 and /cache/sub/b 7000, removed with their directory by `rm -rf /cache`
WASTE_STEPS = [
    "dd if=/dev/zero of=/big bs=1024 count=64",
    "rm /big",
    "dd if=/dev/zero of=/data bs=1000 count=3",
    "chmod 600 /data",
    "dd if=/dev/zero of=/conf bs=100 count=20",
    "yes | head -c 2000 > /conf",
    ("mkdir -p /cache/sub && dd if=/dev/zero of=/cache/a bs=1000 count=5"
     " && dd if=/dev/zero of=/cache/sub/b bs=1000 count=7"),
    "rm -rf /cache",
]
WASTE_DOCKERFILE = "".join(
    f"RUN {step}\n" + ("ENV IMAGESCOPE_TEST=1\n" if number == 0 else "")
    for number, step in enumerate(WASTE_STEPS)
)
# Per step (layer offset above the base): regular-file bytes the layer adds.
ADDED_BYTES = [65536, 0, 3000, 3000, 2000, 2000, 5000 + 7000, 0]
# (path, bytes, layer offset that wrote it, layer offset that hid it, how)
WASTED_FILES = [
    ("/big", 65536, 0, 1, "removed"),
    ("/cache/sub/b", 7000, 6, 7, "removed"),
    ("/cache/a", 5000, 6, 7, "removed"),
    ("/data", 3000, 2, 3, "identical_rewrite"),
    ("/conf", 2000, 4, 5, "overwritten"),
]
REMOVED_BYTES = 65536 + 7000 + 5000
IDENTICAL_REWRITE_BYTES = 3000
OVERWRITTEN_BYTES = 3000 + 2000  # identical rewrites are overwrites too
FINAL_BYTES = 3000 + 2000  # /data and /conf


def assert_one_line_error(result: CliResult, code: ExitCode) -> None:
    assert result.exit_code == code, (result.exit_code, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def waste_image(images: SessionImages) -> str:
    return images.build("waste", WASTE_DOCKERFILE)


@pytest.fixture(scope="module")
def waste_report(imagescope: Cli, waste_image: str) -> dict[str, Any]:
    return inspect_json(imagescope, waste_image)


@pytest.fixture(scope="module")
def base_report(imagescope: Cli, base_image: BaseImage) -> dict[str, Any]:
    return inspect_json(imagescope, base_image.tag)


def test_base_image_is_the_busybox_binary_and_nothing_else(
        base_image: BaseImage, base_report: dict[str, Any]) -> None:
    if base_image.file_bytes is None:
        pytest.skip(f"{base_image.tag} was already in the engine: its contents are unknown")
    summary = base_report["summary"]
    assert summary["total_bytes"] == base_image.file_bytes
    assert summary["final_bytes"] == base_image.file_bytes
    assert summary["wasted_bytes"] == 0
    assert summary["layer_count"] == 1
    assert base_report["wasted_files"] == []


def test_summary_counts_exactly_the_bytes_the_steps_wasted(
        waste_report: dict[str, Any], base_report: dict[str, Any]) -> None:
    base, summary = base_report["summary"], waste_report["summary"]
    assert summary["layer_count"] == base["layer_count"] + len(WASTE_STEPS)
    assert summary["total_bytes"] == base["total_bytes"] + sum(ADDED_BYTES)
    assert summary["removed_bytes"] == base["removed_bytes"] + REMOVED_BYTES
    assert summary["overwritten_bytes"] == base["overwritten_bytes"] + OVERWRITTEN_BYTES
    assert summary["identical_rewrite_bytes"] == (base["identical_rewrite_bytes"]
                                                  + IDENTICAL_REWRITE_BYTES)
    assert summary["wasted_bytes"] == base["wasted_bytes"] + REMOVED_BYTES + OVERWRITTEN_BYTES
    assert summary["final_bytes"] == base["final_bytes"] + FINAL_BYTES


def test_each_wasted_file_names_the_layer_that_wrote_it_and_the_layer_that_hid_it(
        waste_report: dict[str, Any], base_image: BaseImage) -> None:
    first = base_image.layer_count
    ours = [w for w in waste_report["wasted_files"] if w["layer_index"] >= first]
    assert ours == [
        {"path": path, "bytes": size, "layer_index": first + wrote,
         "hidden_by_layer": first + hid, "how": how}
        for path, size, wrote, hid, how in WASTED_FILES
    ]


def test_layers_are_the_engines_layers_with_their_instructions_and_bytes(
        waste_report: dict[str, Any], waste_image: str, base_image: BaseImage,
        docker_client: docker.DockerClient) -> None:
    engine_image = docker_client.images.get(waste_image)
    layers = waste_report["layers"]
    assert [layer["index"] for layer in layers] == list(range(len(layers)))
    assert [layer["diff_id"] for layer in layers] == engine_image.attrs["RootFS"]["Layers"]

    first = base_image.layer_count
    hidden_by: dict[int, dict[int, int]] = {}
    for _, size, wrote, hid, _ in WASTED_FILES:
        by = hidden_by.setdefault(first + wrote, {})
        by[first + hid] = by.get(first + hid, 0) + size
    for offset, step in enumerate(WASTE_STEPS):
        layer = layers[first + offset]
        assert layer["instruction"] == f"RUN {step}"
        assert layer["created_by"] == f"/bin/sh -c {step}"
        assert layer["added_bytes"] == ADDED_BYTES[offset]
        expected_by = hidden_by.get(first + offset, {})
        assert layer["wasted_bytes"] == sum(expected_by.values())
        assert layer["hidden_by"] == [{"layer_index": index, "bytes": size}
                                      for index, size in sorted(expected_by.items())]


def test_image_is_identified_as_the_engine_knows_it(
        waste_report: dict[str, Any], waste_image: str,
        docker_client: docker.DockerClient) -> None:
    image = waste_report["image"]
    engine_image = docker_client.images.get(waste_image)
    assert waste_report["schema_version"] == 1
    assert image["reference"] == waste_image
    assert image["source"] == "engine"
    assert image["id"] == engine_image.id
    assert image["repo_digest"] is None  # built here, never pushed: no manifest digest
    attrs = engine_image.attrs
    platform = "/".join(filter(None, (attrs["Os"], attrs["Architecture"], attrs.get("Variant"))))
    assert image["platform"] == platform


def test_absent_image_with_pull_never_is_image_not_found(
        imagescope: Cli, images: SessionImages) -> None:
    absent = images.tag("never-built")
    assert_one_line_error(imagescope("inspect", absent, "--format", "json", "--pull", "never"),
                          ExitCode.IMAGE_NOT_FOUND)


def test_unreachable_engine(imagescope: Cli) -> None:
    result = imagescope("inspect", "busybox:local", "--format", "json", "--pull", "never",
                        docker_host="unix:///nonexistent/docker.sock")
    assert_one_line_error(result, ExitCode.ENGINE_UNREACHABLE)


def push(client: docker.DockerClient, repository: str, tag: str) -> str:
    """Push and return the manifest digest the registry stored."""
    digest: str | None = None
    for message in client.images.push(repository, tag=tag, stream=True, decode=True):
        if "error" in message:
            pytest.fail(f"push of {repository}:{tag} failed: {message['error']}")
        digest = (message.get("aux") or {}).get("Digest", digest)
    assert digest is not None, f"push of {repository}:{tag} reported no digest"
    return digest


def test_pull_missing_pulls_from_the_registry_and_reports_the_same_image(
        imagescope: Cli, docker_client: docker.DockerClient, images: SessionImages,
        registry: str, base_report: dict[str, Any]) -> None:
    built = images.build("pulled", "RUN dd if=/dev/zero of=/p bs=1000 count=4\nRUN rm /p\n")
    before = inspect_json(imagescope, built)
    assert before["summary"]["removed_bytes"] == base_report["summary"]["removed_bytes"] + 4000

    remote = images.tag("t", repository_prefix=f"{registry}/imagescope")
    repository, tag = remote.rsplit(":", 1)
    assert docker_client.images.get(built).tag(repository, tag)
    digest = push(docker_client, repository, tag)
    docker_client.images.remove(remote)
    docker_client.images.remove(built)  # the last tag: the image's own layers go too
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(remote)

    assert_one_line_error(imagescope("inspect", remote, "--format", "json", "--pull", "never"),
                          ExitCode.IMAGE_NOT_FOUND)

    after = inspect_json(imagescope, remote, pull="missing")
    assert docker_client.images.get(remote).id == before["image"]["id"]
    assert after["image"]["reference"] == remote
    assert after["image"]["id"] == before["image"]["id"]
    assert digest in (after["image"]["repo_digest"] or "")
    assert after["summary"] == before["summary"]
    assert after["wasted_files"] == before["wasted_files"]
    assert [layer["diff_id"] for layer in after["layers"]] == [
        layer["diff_id"] for layer in before["layers"]]


def test_pull_of_an_unknown_repository_fails(
        imagescope: Cli, images: SessionImages, registry: str) -> None:
    unknown = images.tag("absent", repository_prefix=f"{registry}/imagescope")
    assert_one_line_error(imagescope("inspect", unknown, "--format", "json", "--pull", "missing"),
                          ExitCode.PULL_FAILED)
