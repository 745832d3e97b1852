"""The engine errors a user meets first, in plain words: a typo'd name, a platform the local
image is not for, an engine that is not there or not an engine. Pulls go to 127.0.0.1:1, where
nothing listens, so every pull fails at once and off the network."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from imagescope.errors import ExitCode
from tests.engine.support import BaseImage, Cli, SessionImages

pytestmark = pytest.mark.engine

NOWHERE = "127.0.0.1:1"  # a registry host that refuses every connection


@pytest.fixture(scope="module")
def local_name(images: SessionImages, docker_client: docker.DockerClient,
               base_image: BaseImage) -> str:
    """A local image under a registry-qualified name, so a pull of a near name fails fast."""
    name = images.tag("myapp", repository_prefix=f"{NOWHERE}/imagescope-test")
    repository, _, tag = name.rpartition(":")
    docker_client.images.get(base_image.tag).tag(repository, tag)
    return name


def one_line(result_stderr: str) -> str:
    lines = result_stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in result_stderr, result_stderr
    return lines[0]


def test_a_typo_says_the_engine_has_no_such_image_and_names_the_close_one(
        imagescope: Cli, local_name: str) -> None:
    typo = local_name.replace("/myapp:", "/myap:")
    result = imagescope("inspect", typo, "--format", "json")
    assert result.exit_code == ExitCode.PULL_FAILED
    line = one_line(result.stderr)
    assert line.startswith(f"imagescope: error: the Docker engine has no image {typo} "
                           "(close names it has: "), line
    close, _, pulled = line.partition("); pulling it failed: ")
    # other images of the session may be near names too
    assert local_name in close.partition("(close names it has: ")[2].split(", ")
    assert pulled.startswith(f"cannot pull {typo}"), line
    never = imagescope("inspect", typo, "--format", "json", "--pull", "never")
    assert never.exit_code == ExitCode.IMAGE_NOT_FOUND
    assert local_name in one_line(never.stderr)


def test_a_local_image_for_another_platform_is_the_platform_error(
        imagescope: Cli, local_name: str) -> None:
    result = imagescope("inspect", local_name, "--format", "json", "--platform", "linux/arm64")
    assert result.exit_code == ExitCode.PLATFORM_NOT_FOUND, result.stderr
    line = one_line(result.stderr)
    assert "in the Docker engine is for linux/" in line and "not linux/arm64" in line


@pytest.fixture
def closing_socket(tmp_path: Path) -> Iterator[str]:
    """A unix socket that accepts every connection and closes it at once: not an engine."""
    path = tmp_path / "not-docker.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(8)
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"unix://{path}"
    stop.set()
    thread.join()
    server.close()


@pytest.mark.parametrize("where", ["missing", "closing"])
def test_an_engine_that_is_not_there_is_one_plain_sentence(
        imagescope: Cli, where: str, closing_socket: str, tmp_path: Path) -> None:
    host = closing_socket if where == "closing" else f"unix://{tmp_path}/absent.sock"
    result = imagescope("inspect", "busybox:local", "--format", "json", "--pull", "never",
                        docker_host=host)
    assert result.exit_code in (ExitCode.ENGINE_UNREACHABLE, ExitCode.ENGINE_ERROR), result
    line = one_line(result.stderr)
    for raw in ("('", "urllib3", "HTTPConnectionPool", "Connection aborted.", "object at 0x"):
        assert raw not in line, line
    assert "dockerd" in line or "DOCKER_HOST" in line, line
