"""The suggested Dockerfile, built: an image the engine builds with every kind of waste the
suggestion fixes, its patch applied with `patch -p1`, the result built again; the rebuilt image
ships what the estimate said (the tests' bound: within 5 %) and none of the waste."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import docker
import pytest

from imagescope.errors import ExitCode
from tests.engine.support import Cli, SessionImages, inspect_json

pytestmark = pytest.mark.engine

ESTIMATE_BOUND = 0.05

# A stand-in for pip: installs a "package", and keeps a download cache unless told not to.
PIP = b"""#!/bin/sh
case " $* " in
  *" --no-cache-dir "*) ;;
  *) mkdir -p /root/.cache/pip/http && head -c 150000 /dev/urandom > /root/.cache/pip/http/f.whl ;;
esac
mkdir -p /usr/lib/python3/flask && head -c 5000 /dev/urandom > /usr/lib/python3/flask/__init__.py
"""
# `SessionImages.build` writes `FROM busybox:local` as line 1
BEFORE = """\
WORKDIR /app
COPY app/ /app/
RUN chown -R 1000:1000 /app
COPY tools/pip /usr/local/bin/pip
RUN mkdir -p /var/lib/apt/lists \\
 && head -c 200000 /dev/urandom > /var/lib/apt/lists/deb_Packages
RUN mkdir -p /build && head -c 300000 /dev/urandom > /build/toolchain.a \\
 && head -c 1000 /dev/urandom > /app/built.bin
RUN sh /usr/local/bin/pip install flask
RUN rm -f /build/toolchain.a
CMD ["sh"]
"""
CONTEXT = {
    "app/main.sh": b"echo hello\n" * 40,
    "app/.git/objects/pack/pack-1.pack": bytes(range(256)) * 120,
    "app/.git/HEAD": b"ref: refs/heads/main\n",
    "app/debug.log": b"log line\n" * 500,
    "tools/pip": PIP,
}
WASTE_RULES = {"package-cache", "hidden-waste", "identical-rewrite", "build-context",
               "root-user"}


@pytest.fixture(scope="module")
def before(images: SessionImages) -> tuple[str, Path]:
    reference = images.build("suggest-before", BEFORE, CONTEXT)
    return reference, images.workdir / "suggest-before"


def rules(document: dict[str, Any]) -> set[str]:
    return {finding["rule"] for finding in document["findings"]}


def test_the_suggested_dockerfile_builds_and_ships_what_the_estimate_says(
        imagescope: Cli, images: SessionImages, docker_client: docker.DockerClient,
        before: tuple[str, Path], tmp_path: Path) -> None:
    reference, context = before
    assert WASTE_RULES <= rules(inspect_json(imagescope, reference))
    # the build context's Dockerfile is the default --dockerfile
    result = imagescope("inspect", reference, "--pull", "never", "--context", str(context),
                        "--format", "json")
    assert result.exit_code == ExitCode.OK, result.stderr
    suggestion = json.loads(result.stdout)["suggestion"]
    assert {change["rule"] for change in suggestion["changes"]} == {
        "merge-run", "cache-cleanup", "copy-chown", "dockerignore", "non-root-user"}
    patch_file = tmp_path / "suggested.patch"
    result = imagescope("inspect", reference, "--pull", "never", "--context", str(context),
                        "--format", "patch", "-o", str(patch_file))
    assert result.exit_code == ExitCode.OK, result.stderr
    applied = subprocess.run(["patch", "-p1", "--forward", "-i", str(patch_file)], cwd=context,
                             capture_output=True, text=True, check=False)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert (context / "Dockerfile").read_text() == suggestion["dockerfile_text"]
    assert (context / ".dockerignore").read_text() == suggestion["dockerignore_text"]

    after = images.tag("suggest-after")
    docker_client.images.build(path=str(context), tag=after, rm=True, forcerm=True, pull=False)
    rebuilt = inspect_json(imagescope, after)
    measured = rebuilt["summary"]["total_bytes"]
    estimated = suggestion["estimated_bytes"]
    print(f"suggestion: shipped {suggestion['shipped_bytes']:,}, estimated {estimated:,}, "
          f"measured after the rebuild {measured:,} bytes")
    print(patch_file.read_text())
    assert abs(measured - estimated) <= ESTIMATE_BOUND * estimated, (measured, estimated)
    assert suggestion["shipped_bytes"] - measured > 600_000  # the waste really went
    assert not WASTE_RULES & rules(rebuilt), rules(rebuilt)
    assert rebuilt["summary"]["layer_count"] < json.loads(
        imagescope("inspect", reference, "--pull", "never", "--format", "json").stdout
    )["summary"]["layer_count"]


def test_a_patch_without_a_dockerfile_is_a_one_line_error(imagescope: Cli,
                                                          before: tuple[str, Path]) -> None:
    reference, _ = before
    result = imagescope("inspect", reference, "--pull", "never", "--format", "patch")
    assert result.exit_code == ExitCode.USAGE
    assert result.stderr.count("\n") == 1 and "--dockerfile" in result.stderr


# A "toolchain" (a header) needed only to build: the suggestion moves it to a build stage.
TOOLCHAIN = """\
WORKDIR /app
RUN mkdir -p /usr/local/include /usr/local/bin \\
 && head -c 400000 /dev/urandom > /usr/local/include/toolchain.h
COPY app/ /app/
RUN head -c 3000 /dev/urandom > /app/server && cp /app/server /usr/local/bin/server
ENV PORT=8000
CMD ["/app/server"]
"""


def test_a_build_stage_suggested_for_a_toolchain_builds_and_ships_the_estimate(
        imagescope: Cli, images: SessionImages, docker_client: docker.DockerClient,
        tmp_path: Path) -> None:
    reference = images.build("suggest-toolchain", TOOLCHAIN,
                             {"app/main.sh": b"echo hi\n" * 10, "app/debug.log": b"x\n" * 900})
    context = images.workdir / "suggest-toolchain"
    result = imagescope("inspect", reference, "--pull", "never", "--context", str(context),
                        "--format", "json")
    assert result.exit_code == ExitCode.OK, result.stderr
    suggestion = json.loads(result.stdout)["suggestion"]
    assert "multi-stage" in {change["rule"] for change in suggestion["changes"]}
    text = suggestion["dockerfile_text"]
    assert "COPY --from=build /app /app" in text and "COPY --from=build /usr/local/bin " \
        "/usr/local/bin" in text
    (context / "Dockerfile").write_text(text)
    (context / ".dockerignore").write_text(suggestion["dockerignore_text"])
    after = images.tag("suggest-toolchain-after")
    docker_client.images.build(path=str(context), tag=after, rm=True, forcerm=True, pull=False)
    rebuilt = inspect_json(imagescope, after)
    measured, estimated = rebuilt["summary"]["total_bytes"], suggestion["estimated_bytes"]
    print(f"two-stage: shipped {suggestion['shipped_bytes']:,}, estimated {estimated:,}, "
          f"measured {measured:,} bytes")
    assert abs(measured - estimated) <= ESTIMATE_BOUND * estimated, (measured, estimated)
    assert "toolchain-files" not in rules(rebuilt)
    check = "id -u && cmp /app/server /usr/local/bin/server && echo same"
    run = docker_client.containers.run(after, remove=True, entrypoint=["sh", "-c"],
                                       command=[check], network_mode="none")
    assert run.decode().split() == ["10001", "same"]
