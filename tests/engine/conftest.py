"""Engine-test fixtures: the Docker engine at DOCKER_HOST, a busybox base, images built on it."""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest
import requests

from tests.engine.support import (
    BASE_TAG,
    BUSYBOX_PATHS,
    HOW_TO_GET_ONE,
    BaseImage,
    Cli,
    SessionImages,
    busybox_rootfs_tar,
    engine_unavailable,
    is_static_executable,
    run_imagescope,
)


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    """A docker-py client for the engine at DOCKER_HOST (or the default socket)."""
    host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        client = docker.from_env(timeout=300)
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException) as err:
        engine_unavailable(f"no Docker engine answers at {host} ({err}); {HOW_TO_GET_ONE}")
    yield client
    client.close()


@pytest.fixture(scope="session")
def base_image(docker_client: docker.DockerClient) -> Iterator[BaseImage]:
    """busybox:local, imported from the host's static busybox unless the engine has one.

    An image this session imported is removed at the end; one that was there is left alone.
    """
    try:
        existing = docker_client.images.get(BASE_TAG)
    except docker.errors.ImageNotFound:
        existing = None
    if existing is not None:
        yield BaseImage(BASE_TAG, len(existing.attrs["RootFS"]["Layers"]), None)
        return
    candidates = [Path(p) for p in BUSYBOX_PATHS if Path(p).is_file()]
    busybox = next((p for p in candidates if is_static_executable(p)), None)
    if busybox is None:
        engine_unavailable(f"{BASE_TAG} is not in the engine and there is no statically linked "
                           f"busybox at {' or '.join(BUSYBOX_PATHS)} to make it from "
                           "(apt-get install busybox-static)")
    repository, tag = BASE_TAG.split(":")
    docker_client.api.import_image_from_data(busybox_rootfs_tar(busybox), repository=repository,
                                             tag=tag)
    imported = docker_client.images.get(BASE_TAG)
    yield BaseImage(BASE_TAG, len(imported.attrs["RootFS"]["Layers"]), busybox.stat().st_size)
    try:
        docker_client.images.remove(BASE_TAG)
    except docker.errors.APIError as err:  # e.g. an image someone built on it meanwhile
        print(f"could not remove {BASE_TAG}: {err}", file=sys.stderr)


@pytest.fixture(scope="session")
def images(docker_client: docker.DockerClient, base_image: BaseImage,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[SessionImages]:
    """Builds this session's test images; removes them all at its end."""
    built = SessionImages(docker_client, tmp_path_factory.mktemp("contexts"), base_image)
    yield built
    built.remove_all()


@pytest.fixture(scope="session")
def registry(docker_client: docker.DockerClient) -> str:
    """host:port of the loopback registry `.ci/engine.sh start` runs (IMAGESCOPE_TEST_REGISTRY)."""
    address = os.environ.get("IMAGESCOPE_TEST_REGISTRY", "")
    if not address:
        engine_unavailable(f"IMAGESCOPE_TEST_REGISTRY is not set; {HOW_TO_GET_ONE}")
    if not address.startswith(("127.", "localhost:")):
        pytest.fail(f"IMAGESCOPE_TEST_REGISTRY={address}: the tests push only to a loopback "
                    "registry (127.0.0.1:PORT)", pytrace=False)
    try:
        with urllib.request.urlopen(f"http://{address}/v2/", timeout=10):
            pass
    except (urllib.error.URLError, OSError) as err:
        engine_unavailable(f"no registry answers at http://{address}/v2/ ({err}); "
                           f"{HOW_TO_GET_ONE}")
    return address


@pytest.fixture(scope="session")
def imagescope() -> Cli:
    """Runs the imagescope CLI: `imagescope("inspect", ref, ...)` → CliResult."""
    return run_imagescope
