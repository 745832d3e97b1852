"""Registries for the tests, started once per test module (none is left running for the tests
that count this process's children and threads) over one storage directory: `plain`
(anonymous, where the test images are pushed), `htpasswd`, `token` (with the tests' token
issuer) and `tls` (a certificate of the tests' own CA). No Docker engine runs: DOCKER_HOST
points at nothing, and no credentials of the user's are seen."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fixtures import imagegen
from tests.registry.servers import (
    KeyPair,
    Registry,
    TokenIssuer,
    htpasswd_line,
    make_certificate,
    push_layout,
    serving,
    start_registry,
)

USER, PASSWORD = "alice", "correct-horse-battery"


@pytest.fixture(autouse=True)
def no_engine_no_login(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty DOCKER_CONFIG, no IMAGESCOPE_CREDS, and DOCKER_HOST at a socket no one serves."""
    config = tmp_path / "docker-config"
    config.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    monkeypatch.delenv("IMAGESCOPE_CREDS", raising=False)
    return config


@pytest.fixture(scope="session")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("registry-storage")


@pytest.fixture(scope="session")
def servers_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("registry-servers")


def _running(registry: Registry) -> Iterator[Registry]:
    try:
        yield registry
    finally:
        registry.stop()


@pytest.fixture(scope="module")
def plain(servers_dir: Path, storage: Path) -> Iterator[Registry]:
    yield from _running(start_registry(servers_dir, storage, name="plain"))


@pytest.fixture(scope="module")
def htpasswd(servers_dir: Path, storage: Path) -> Iterator[Registry]:
    users = servers_dir / "htpasswd"
    users.write_text(htpasswd_line(USER, PASSWORD))
    auth = f"  htpasswd:\n    realm: imagescope-tests\n    path: {users}\n"
    yield from _running(start_registry(servers_dir, storage, name="htpasswd", auth=auth))


@dataclass
class TokenRegistry:
    registry: Registry
    issuer: TokenIssuer


@pytest.fixture(scope="module")
def token(servers_dir: Path, storage: Path) -> Iterator[TokenRegistry]:
    keys = make_certificate(servers_dir / "token-keys", "token-signer", ip=None)
    issuer = TokenIssuer(keys, users={USER: PASSWORD})
    with serving(issuer.handler()) as realm:
        auth = (f"  token:\n    realm: {realm}/token\n    service: {issuer.service}\n"
                f"    issuer: {issuer.issuer}\n    rootcertbundle: {keys.certificate}\n")
        registry = start_registry(servers_dir, storage, name="token", auth=auth)
        try:
            yield TokenRegistry(registry, issuer)
        finally:
            registry.stop()


@pytest.fixture(scope="session")
def ca(servers_dir: Path) -> KeyPair:
    return make_certificate(servers_dir / "tls", "registry-ca")


@pytest.fixture(scope="module")
def tls(servers_dir: Path, storage: Path, ca: KeyPair) -> Iterator[Registry]:
    yield from _running(start_registry(servers_dir, storage, name="tls",
                                       tls=(ca.certificate, ca.key)))


# --------------------------------------------------------------------------- test images


def base_layer() -> bytes:
    return imagegen.layer_tar([
        imagegen.dir("etc"), imagegen.file("etc/os-release", b"ID=imagescope-test\n"),
        imagegen.dir("usr"), imagegen.dir("usr/bin"),
        imagegen.file("usr/bin/tool", size=300_000, mode=0o755),
    ])


def app_image(version: int) -> imagegen.ImageSpec:
    """A base layer both versions share, then a layer that writes a cache and a later one that
    deletes it (waste), then the version's own file."""
    return imagegen.ImageSpec(layers=[
        base_layer(),
        imagegen.layer_tar([imagegen.dir("root"), imagegen.dir("root/.cache"),
                            imagegen.file("root/.cache/pip/wheel.whl", size=120_000),
                            imagegen.dir("app"), imagegen.file("app/main.py", b"print(1)\n")]),
        imagegen.layer_tar([imagegen.dir("root"), imagegen.whiteout("root/.cache")]),
        imagegen.layer_tar([imagegen.dir("app"),
                            imagegen.file("app/version", f"{version}\n".encode()),
                            imagegen.file("app/data.bin", size=50_000 * version)]),
    ], repo_tag=f"example/app:{version}")


@dataclass
class Pushed:
    """What the session pushed to the plain registry, and the OCI layouts it pushed."""

    layouts: dict[str, Path]  # name:tag → the OCI layout directory holding the same image
    digests: dict[str, str]  # name:tag → the digest tagged


@pytest.fixture(scope="module")
def pushed(plain: Registry, tmp_path_factory: pytest.TempPathFactory) -> Pushed:
    """The test images, pushed (again: the storage is shared, a push of what is there is a
    no-op) to the plain registry."""
    root = tmp_path_factory.mktemp("pushed-layouts")
    result = Pushed({}, {})

    def push(name: str, members: list[imagegen.Member]) -> None:
        layout = root / name.replace(":", "-").replace("/", "-")
        imagegen._write_dir(layout, members)
        repository, tag = name.split(":")
        result.layouts[name] = layout
        result.digests[name] = push_layout(plain.url, repository, tag, members)

    push("team/app:1", imagegen.oci_layout_members(app_image(1))[0])
    push("team/app:2", imagegen.oci_layout_members(app_image(2))[0])
    push("team/zstd:1", imagegen.oci_layout_members(app_image(1), compression="zstd")[0])
    push("team/plain:1", imagegen.oci_layout_members(app_image(1), compression="plain")[0])
    arm = app_image(3)
    arm.architecture, arm.variant = "arm64", "v8"
    push("team/multi:1", imagegen.oci_index_members([app_image(1), arm])[0])
    return result
