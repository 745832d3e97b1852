"""Engine faults: the engine not running, stopping while an image streams, the image removed
while it is read, pulls that fail (registry down, unknown image, credentials wanted). Each ends
in one line and its exit code; nothing is left behind (no files, no cache entry from a broken
stream).

The test that kills an engine starts its own dockerd in a temp dir (as `.ci/engine.sh` does) and
stops it with `.ci/engine.sh stop`: the session's shared engine is never touched.
"""

from __future__ import annotations

import contextlib
import http.server
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
import pytest
import requests

from imagescope.errors import (
    EngineError,
    EngineUnreachable,
    ExitCode,
    ImageNotFound,
    ImagescopeError,
    PullFailed,
)
from imagescope.progress import Progress
from imagescope.sources import load
from imagescope.store.cache import LayerCache
from tests.engine.support import Cli, CliResult, SessionImages, engine_unavailable
from tests.registry.servers import serving

pytestmark = pytest.mark.engine

ROOT = Path(__file__).resolve().parents[2]
ENGINE_SH = ROOT / ".ci" / "engine.sh"
READY_SECONDS = 60


def assert_one_line_error(result: CliResult, code: ExitCode) -> str:
    assert result.exit_code == code, (result.exit_code, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("imagescope: error: "), result.stderr
    return lines[0]


def cache_is_clean(cache: LayerCache) -> list[str]:
    """The names in the cache directory: no temp files, every entry readable."""
    if not cache.directory.is_dir():
        return []
    names = sorted(p.name for p in cache.directory.iterdir())
    assert not [n for n in names if n.startswith(".tmp-")], names
    return names


def rootfs(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def import_image(client: docker.DockerClient, reference: str, files: dict[str, bytes]) -> str:
    repository, tag = reference.rsplit(":", 1)
    client.api.import_image_from_data(rootfs(files), repository=repository, tag=tag)
    return reference


# --------------------------------------------------------------------------- a private engine


@dataclass
class PrivateEngine:
    """A dockerd of this test's own: its dir, its socket, its process."""

    directory: Path
    process: subprocess.Popen[bytes]

    @property
    def host(self) -> str:
        return f"unix://{self.directory}/docker.sock"

    def client(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.host, timeout=120)

    def kill(self) -> None:
        """SIGKILL dockerd, as a crash or an OOM kill would stop it."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)


@pytest.fixture
def private_engine() -> Iterator[PrivateEngine]:
    """dockerd in a temp dir of its own (flags as .ci/engine.sh uses), stopped and deleted by
    `.ci/engine.sh stop DIR` however the test ends."""
    if os.geteuid() != 0 or shutil.which("dockerd") is None:
        engine_unavailable("starting a private dockerd needs root and dockerd "
                           "(apt-get install docker.io)")
    # a short path under /tmp: containerd's sockets live below it (108-byte socket paths)
    directory = Path(tempfile.mkdtemp(prefix="imagescope-engine.", dir="/tmp"))
    (directory / ".imagescope-engine").touch()  # engine.sh stop deletes only dirs it marks so
    (directory / "daemon.json").write_text("{}\n")
    namespace = "imagescope-" + directory.name.replace(".", "-")
    log = (directory / "dockerd.log").open("wb")
    process = subprocess.Popen(
        ["dockerd", "--config-file", str(directory / "daemon.json"), "--storage-driver", "vfs",
         "--iptables=false", "--ip-forward=false", "--bridge=none",
         "--data-root", str(directory / "data"), "--exec-root", str(directory / "exec"),
         "--pidfile", str(directory / "dockerd.pid"),
         "--containerd-namespace", namespace,
         "--containerd-plugins-namespace", namespace + "-plugins",
         "-H", f"unix://{directory}/docker.sock"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    (directory / "dockerd.launched").write_text(f"{process.pid}\n")
    engine = PrivateEngine(directory, process)
    try:
        deadline = time.monotonic() + READY_SECONDS
        while True:
            try:
                with contextlib.closing(engine.client()) as client:
                    client.ping()
                break
            except (docker.errors.DockerException, requests.exceptions.RequestException):
                if process.poll() is not None or time.monotonic() > deadline:
                    tail = (directory / "dockerd.log").read_text(errors="replace")[-2000:]
                    pytest.fail(f"the private dockerd did not start:\n{tail}", pytrace=False)
                time.sleep(0.2)
        yield engine
    finally:
        engine.kill()
        log.close()
        subprocess.run(["bash", str(ENGINE_SH), "stop", str(directory)], check=False,
                       capture_output=True, timeout=120)
        assert not directory.exists(), f"{directory} was left behind"


class KillAfter(Progress):
    """Kills the engine once `after` bytes of the saved image have streamed."""

    def __init__(self, engine: PrivateEngine, after: int) -> None:
        self.engine = engine
        self.after = after
        self.streamed = 0
        self.killed = False

    def read_advanced(self, nbytes: int) -> None:
        self.streamed += nbytes
        if not self.killed and self.streamed >= self.after:
            self.killed = True
            self.engine.kill()


def test_engine_stopping_mid_stream(private_engine: PrivateEngine, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """dockerd killed while `docker save` streams a 48 MiB image: EngineError (12), one line;
    nothing from the broken stream is cached, no file is written."""
    payload = os.urandom(48 << 20)  # incompressible, larger than any socket buffer
    with contextlib.closing(private_engine.client()) as client:
        import_image(client, "imagescope-test/big:killed", {"data/blob": payload,
                                                            "etc/hostname": b"x\n"})
    monkeypatch.setenv("DOCKER_HOST", private_engine.host)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    cache = LayerCache(tmp_path / "cache")
    progress = KillAfter(private_engine, after=4 << 20)
    with pytest.raises(ImagescopeError) as caught:
        load("imagescope-test/big:killed", pull="never", progress=progress, cache=cache)
    assert progress.killed
    error = caught.value
    assert isinstance(error, EngineError), repr(error)
    assert error.exit_code == ExitCode.ENGINE_ERROR
    assert "\n" not in str(error) and "reading imagescope-test/big:killed" in str(error)
    assert cache_is_clean(cache) == []
    assert list(cwd.iterdir()) == []

    # the engine is gone now: the next run cannot reach it
    with pytest.raises(EngineUnreachable):
        load("imagescope-test/big:killed", pull="never", cache=cache)


def test_engine_not_running(private_engine: PrivateEngine, imagescope: Cli) -> None:
    """An engine that was running and stopped (its socket may linger): not reachable (11)."""
    private_engine.kill()
    line = assert_one_line_error(
        imagescope("inspect", "busybox:local", "--format", "json", "--pull", "never",
                   docker_host=private_engine.host), ExitCode.ENGINE_UNREACHABLE)
    assert "DOCKER_HOST" in line


def test_a_socket_nobody_listens_on(tmp_path: Path, imagescope: Cli) -> None:
    path = Path(tempfile.mkdtemp(prefix="isk-", dir="/tmp")) / "docker.sock"
    try:
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(str(path))
        listener.close()  # the file stays; connecting is refused
        assert_one_line_error(
            imagescope("inspect", "busybox:local", "--pull", "never",
                       docker_host=f"unix://{path}"), ExitCode.ENGINE_UNREACHABLE)
    finally:
        shutil.rmtree(path.parent)


# --------------------------------------------------------------------------- removed while read


class RemoveWhen(Progress):
    """Removes an image from the engine when a phase begins (`status`) or bytes stream."""

    def __init__(self, client: docker.DockerClient, reference: str, *, on_status: str = "",
                 after: int | None = None) -> None:
        self.client = client
        self.reference = reference
        self.on_status = on_status
        self.after = after
        self.streamed = 0
        self.removed = False

    def _remove(self) -> None:
        if not self.removed:
            self.removed = True
            self.client.images.remove(self.reference, force=True)

    def status(self, text: str) -> None:
        if self.on_status and text.startswith(self.on_status):
            self._remove()

    def read_advanced(self, nbytes: int) -> None:
        self.streamed += nbytes
        if self.after is not None and self.streamed >= self.after:
            self._remove()


def test_image_removed_before_it_streams(docker_client: docker.DockerClient,
                                         images: SessionImages, tmp_path: Path) -> None:
    """Found, then removed before `docker save` starts: ImageNotFound (9)."""
    reference = import_image(docker_client, images.tag("removed-early"),
                             {"a": os.urandom(1 << 20)})
    cache = LayerCache(tmp_path / "cache")
    progress = RemoveWhen(docker_client, reference, on_status="reading ")
    with pytest.raises(ImageNotFound, match="removed from the Docker engine while it was"):
        load(reference, pull="never", progress=progress, cache=cache)
    assert progress.removed
    assert cache_is_clean(cache) == []


def test_image_removed_while_it_streams(docker_client: docker.DockerClient,
                                        images: SessionImages, tmp_path: Path) -> None:
    """Removed once its save has begun: the engine keeps the layers it is exporting, so the
    read either completes with the image as it was, or fails with one typed line; the cache
    holds only whole, verified entries either way."""
    payload = os.urandom(8 << 20)
    reference = import_image(docker_client, images.tag("removed-late"),
                             {"a": payload, "b": b"small\n"})
    cache = LayerCache(tmp_path / "cache")
    progress = RemoveWhen(docker_client, reference, after=1)
    try:
        image = load(reference, pull="never", progress=progress, cache=cache)
    except (ImageNotFound, EngineError) as error:
        assert "\n" not in str(error)
    else:
        assert sum(e.size for layer in image.layers for e in layer.entries) == len(payload) + 6
    assert progress.removed
    for name in cache_is_clean(cache):
        assert name.endswith((".layer", ".image"))
        if name.endswith(".layer"):
            assert cache.get(name.removesuffix(".layer").replace("-", ":", 1)) is not None


# --------------------------------------------------------------------------- pulls


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_pull_from_a_registry_that_is_down(imagescope: Cli, docker_client: docker.DockerClient,
                                           tmp_path: Path) -> None:
    reference = f"127.0.0.1:{free_port()}/imagescope/absent:1"
    line = assert_one_line_error(
        imagescope("inspect", reference, "--format", "json", "--pull", "missing"),
        ExitCode.PULL_FAILED)
    assert "connection refused" in line


def test_pull_of_an_unknown_image(imagescope: Cli, images: SessionImages, registry: str) -> None:
    unknown = images.tag("never-pushed", repository_prefix=f"{registry}/imagescope")
    line = assert_one_line_error(
        imagescope("inspect", unknown, "--pull", "always"), ExitCode.PULL_FAILED)
    assert "not found" in line or "unknown" in line


class _Unauthorized(http.server.BaseHTTPRequestHandler):
    """A registry that wants credentials for everything (distribution's 401 answer)."""

    def _deny(self) -> None:
        body = json.dumps({"errors": [{"code": "UNAUTHORIZED",
                                       "message": "authentication required"}]}).encode()
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="imagescope-test"')
        self.send_header("Docker-Distribution-Api-Version", "registry/2.0")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_HEAD = do_POST = do_PUT = _deny

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def auth_registry() -> Iterator[str]:
    with serving(_Unauthorized) as origin:
        yield origin.removeprefix("http://")


def test_pull_that_wants_credentials(imagescope: Cli, docker_client: docker.DockerClient,
                                     auth_registry: str) -> None:
    reference = f"{auth_registry}/private/app:1"
    line = assert_one_line_error(
        imagescope("inspect", reference, "--format", "json", "--pull", "missing"),
        ExitCode.PULL_FAILED)
    assert "no basic auth credentials" in line
    assert f"docker login {auth_registry}" in line
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(reference)  # nothing half-pulled


def test_pull_failure_in_process_is_typed(auth_registry: str,
                                          docker_client: docker.DockerClient) -> None:
    with pytest.raises(PullFailed) as caught:
        load(f"{auth_registry}/private/app:2", pull="always")
    assert caught.value.exit_code == ExitCode.PULL_FAILED
