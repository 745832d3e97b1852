"""Helpers for the engine tests: the CLI as a child process, the busybox base, built images."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import tarfile
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import docker
import docker.errors
import pytest

from imagescope.errors import ExitCode
from tests.cli import CliResult, run_process

BASE_TAG = "busybox:local"
BUSYBOX_PATHS = ("/usr/bin/busybox", "/bin/busybox")
HOW_TO_GET_ONE = "run .ci/run, or start one as DEVELOPERS.md says"
CLI_TIMEOUT_SECONDS = 600


def engine_unavailable(reason: str) -> NoReturn:
    """Skip, or fail when IMAGESCOPE_REQUIRE_ENGINE=1 (CI), for want of the engine or registry."""
    if os.environ.get("IMAGESCOPE_REQUIRE_ENGINE") == "1":
        pytest.fail(f"{reason} (IMAGESCOPE_REQUIRE_ENGINE=1)", pytrace=False)
    pytest.skip(reason)


@dataclass(frozen=True)
class BaseImage:
    """The image every test Dockerfile starts FROM.

    `file_bytes` is the regular-file bytes of its filesystem when this session imported it
    (the busybox binary; applets are symlinks), None when it was already in the engine.
    """

    tag: str
    layer_count: int
    file_bytes: int | None


def is_static_executable(path: Path) -> bool:
    """Whether `path` is an ELF executable without a program interpreter (PT_INTERP): one that
    runs in an image holding nothing else."""
    with path.open("rb") as elf:
        header = elf.read(64)
        if len(header) < 64 or header[:4] != b"\x7fELF":
            return False
        order = "<" if header[5] == 1 else ">"
        if header[4] == 2:  # 64-bit
            (table,) = struct.unpack(order + "Q", header[32:40])
            entry_size, count = struct.unpack(order + "HH", header[54:58])
        else:
            (table,) = struct.unpack(order + "I", header[28:32])
            entry_size, count = struct.unpack(order + "HH", header[42:46])
        for number in range(count):
            elf.seek(table + number * entry_size)
            (segment_type,) = struct.unpack(order + "I", elf.read(4))
            if segment_type == 3:  # PT_INTERP: needs a dynamic loader
                return False
    return True


def busybox_rootfs_tar(busybox: Path) -> bytes:
    """A root filesystem holding only bin/busybox and a symlink per applet, deterministic."""
    applets = subprocess.run([str(busybox), "--list"], check=True, capture_output=True,
                             text=True).stdout.split()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        directory = tarfile.TarInfo("bin")
        directory.type, directory.mode, directory.mtime = tarfile.DIRTYPE, 0o755, 0
        tar.addfile(directory)
        binary = tarfile.TarInfo("bin/busybox")
        binary.size, binary.mode, binary.mtime = busybox.stat().st_size, 0o755, 0
        with busybox.open("rb") as content:
            tar.addfile(binary, content)
        for applet in sorted(set(applets) - {"busybox"}):
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname, link.mode, link.mtime = tarfile.SYMTYPE, "busybox", 0o777, 0
            tar.addfile(link)
    return buffer.getvalue()


@dataclass
class SessionImages:
    """Builds images for this session under unique tags and removes every tag it handed out."""

    client: docker.DockerClient
    workdir: Path
    base: BaseImage
    session: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    tags: list[str] = field(default_factory=list)

    def tag(self, name: str, repository_prefix: str = "imagescope-test") -> str:
        """A tag unique to this session, removed at its end."""
        reference = f"{repository_prefix}/{name}:{self.session}"
        self.tags.append(reference)
        return reference

    def dockerfile_text(self, dockerfile: str) -> str:
        """The Dockerfile `build` writes for `dockerfile`: the base image's FROM line added."""
        return f"FROM {self.base.tag}\n{dockerfile}"

    def build(self, name: str, dockerfile: str,
              context: Mapping[str, bytes] | None = None) -> str:
        """Build `dockerfile` (its FROM line is added: the base image) with the legacy builder.

        `context` maps paths relative to the build context to the bytes of files written there
        next to the Dockerfile, mode 0644 (directories 0755), for COPY steps to take.
        """
        directory = self.workdir / name
        directory.mkdir()
        for relative, content in (context or {}).items():
            target = directory / relative
            target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            target.write_bytes(content)
            target.chmod(0o644)
        (directory / "Dockerfile").write_text(self.dockerfile_text(dockerfile))
        reference = self.tag(name)
        try:
            self.client.images.build(path=str(directory), tag=reference, rm=True, forcerm=True,
                                     pull=False)
        except docker.errors.BuildError as err:
            log = "".join(str(chunk.get("stream", chunk)) for chunk in err.build_log)
            pytest.fail(f"building {name} failed: {err}\n{log}", pytrace=False)
        return reference

    def remove_all(self) -> None:
        for reference in reversed(self.tags):
            try:
                self.client.images.remove(reference, force=True)
            except docker.errors.ImageNotFound:
                pass


Cli = Callable[..., CliResult]  # run_imagescope, as the `imagescope` fixture hands it out


def run_imagescope(*args: str, docker_host: str | None = None) -> CliResult:
    """`python -m imagescope ARGS` in a child process, as a user runs it; DOCKER_HOST comes from
    the environment unless `docker_host` is given."""
    return run_process(*args, env={"DOCKER_HOST": docker_host} if docker_host else None,
                       timeout=CLI_TIMEOUT_SECONDS)


def inspect_json(imagescope: Cli, reference: str, pull: str = "never") -> dict[str, Any]:
    """`imagescope inspect REF --format json --pull PULL`, which must succeed, parsed."""
    result = imagescope("inspect", reference, "--format", "json", "--pull", pull)
    assert result.exit_code == ExitCode.OK, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document
