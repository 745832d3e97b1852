"""What imagescope leaves the engine to check: Docker's layer store checks every layer it
exports (tar-split's per-file checksums, then the tar against its diff_id), so layers from it
are not hashed again; a layer altered in the engine's storage fails the read, one line, and
nothing is cached."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import docker
import pytest

from imagescope.errors import ExitCode
from imagescope.sources.engine import layer_store_verifies
from tests.engine.support import Cli, SessionImages

pytestmark = pytest.mark.engine


def top_layer_dir(client: docker.DockerClient, reference: str) -> Path:
    """The graph driver's directory of the image's top layer (vfs: a plain directory)."""
    info = client.info()
    root, driver = Path(info["DockerRootDir"]), info["Driver"]
    if driver != "vfs":
        pytest.skip(f"alters a layer through the vfs driver's directories; this engine runs "
                    f"{driver}")
    chain = None
    for diff_id in client.images.get(reference).attrs["RootFS"]["Layers"]:
        chain = diff_id if chain is None else (
            "sha256:" + hashlib.sha256(f"{chain} {diff_id}".encode()).hexdigest())
    assert chain is not None
    cache_id = (root / "image" / driver / "layerdb" / "sha256" / chain.partition(":")[2]
                / "cache-id").read_text()
    return root / driver / "dir" / cache_id


def test_the_test_engine_checks_the_layers_it_exports(
        docker_client: docker.DockerClient) -> None:
    assert docker_client.info()["Driver"] and layer_store_verifies(docker_client)


def test_a_layer_altered_in_the_engine_fails_the_read_and_nothing_is_cached(
        imagescope: Cli, images: SessionImages, docker_client: docker.DockerClient,
        private_cache_home: Path) -> None:
    # (the session in the step: no build cache hands over a layer altered by an earlier run)
    reference = images.build("altered", f"RUN dd if=/dev/zero of=/data bs=1000 count=3 && "
                                        f"echo {images.session} > /session\n")
    before = imagescope("inspect", reference, "--format", "json", "--no-cache")
    assert before.exit_code == ExitCode.OK, before.stderr
    data = top_layer_dir(docker_client, reference) / "data"
    if not os.access(data, os.W_OK):
        pytest.skip(f"cannot write {data} (the engine's storage; CI runs as root)")
    data.write_bytes(b"\1" * 3000)  # same size, other bytes: what the tar-split records differ
    for _ in range(2):  # the second read must not be answered from anything the first stored
        result = imagescope("inspect", reference, "--format", "json")
        assert result.exit_code == ExitCode.ENGINE_ERROR, result.stderr
        assert result.stdout == ""
        assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1
        assert "checksum" in result.stderr, result.stderr
    stored = list((private_cache_home / "imagescope").rglob("*.layer"))
    diff_ids = docker_client.images.get(reference).attrs["RootFS"]["Layers"]
    assert not any(diff_ids[-1].partition(":")[2] in path.name for path in stored), stored
    assert json.loads(before.stdout)["summary"]
