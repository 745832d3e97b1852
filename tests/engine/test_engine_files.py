"""`cat` and `export` through the engine (its export streamed up to the layer, twice: the
documents, then the member) and from a registry `docker push` filled (gzip blobs): the bytes a
build wrote, also after a later step deleted them."""

from __future__ import annotations

import io
import tarfile

import docker
import pytest

from imagescope.errors import ExitCode
from tests.engine.support import Cli, SessionImages
from tests.engine.test_engine_inspect import push

pytestmark = pytest.mark.engine

NO_ENGINE = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}
# layer 1 (the base is layer 0): /secret-ish build output, 3 lines; layer 2 deletes it
DOCKERFILE = ("RUN printf 'one\\ntwo\\nthree\\n' > /built.txt && ln -s /built.txt /link\n"
              "RUN rm /built.txt && printf 'kept' > /kept.txt\n")


@pytest.fixture(scope="module")
def built(images: SessionImages) -> str:
    return images.build("files", DOCKERFILE)


def test_cat_reads_a_deleted_file_from_its_layer_through_the_engine(
        imagescope: Cli, built: str, docker_client: docker.DockerClient) -> None:
    layers = len(docker_client.images.get(built).attrs["RootFS"]["Layers"])
    written = layers - 2  # the layer of the first RUN
    result = imagescope("cat", built, "/built.txt", "--layer", str(written), "--pull", "never")
    assert result.exit_code == ExitCode.OK, result.stderr
    assert result.stdout == "one\ntwo\nthree\n"
    gone = imagescope("cat", built, "/built.txt", "--pull", "never")
    assert gone.exit_code == ExitCode.PATH_NOT_FOUND
    assert gone.stderr.strip() == "imagescope: error: /built.txt: no such file in the final image"
    through = imagescope("cat", built, "/link", "--layer", str(written), "--pull", "never")
    assert through.stdout == "one\ntwo\nthree\n"  # the symlink followed inside the image


def test_export_from_a_registry_without_an_engine(
        imagescope: Cli, built: str, docker_client: docker.DockerClient,
        images: SessionImages, registry: str) -> None:
    from tests.cli import run_process

    remote = images.tag("files-pushed", repository_prefix=f"{registry}/imagescope")
    repository, tag = remote.rsplit(":", 1)
    assert docker_client.images.get(built).tag(repository, tag)
    push(docker_client, repository, tag)
    result = run_process("export", f"docker://{remote}", "/kept.txt", "/link", "-o", "-",
                         "--no-cache", env=NO_ENGINE)
    assert result.exit_code == ExitCode.OK, result.stderr
    with tarfile.open(fileobj=io.BytesIO(result.stdout.encode("utf-8", "surrogateescape"))) as archive:
        members = {member.name: member for member in archive.getmembers()}
        assert set(members) == {"kept.txt", "link"}
        kept = archive.extractfile(members["kept.txt"])
        assert kept is not None and kept.read() == b"kept"
        assert members["link"].issym() and members["link"].linkname == "/built.txt"
