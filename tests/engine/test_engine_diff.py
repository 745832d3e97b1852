"""`imagescope diff` on images a real engine built: a version and its successor sharing a base,
compared by name and against a `docker save` archive of the old one (mixed sources), with gates."""

from __future__ import annotations

import json
from pathlib import Path

import docker
import pytest

from imagescope.errors import ExitCode
from tests.engine.support import BaseImage, Cli, SessionImages

pytestmark = pytest.mark.engine

# v1: 4000 bytes of app, a 1000-byte cache left behind.
V1 = ("RUN mkdir -p /app /root/.cache/pip && dd if=/dev/zero of=/app/lib bs=1000 count=4 "
      "&& dd if=/dev/zero of=/root/.cache/pip/w bs=1000 count=1\n"
      "RUN echo v1 > /app/version\n")
# v2: same first step (the layer is rebuilt by the legacy builder's cache: same diff_id), a
# changed second step, and a new step writing 6000 bytes that a later step removes.
V2 = ("RUN mkdir -p /app /root/.cache/pip && dd if=/dev/zero of=/app/lib bs=1000 count=4 "
      "&& dd if=/dev/zero of=/root/.cache/pip/w bs=1000 count=1\n"
      "RUN echo v2-changed > /app/version\n"
      "RUN dd if=/dev/zero of=/blob bs=1000 count=6\n"
      "RUN rm /blob\n")


@pytest.fixture(scope="module")
def versions(images: SessionImages) -> tuple[str, str]:
    return images.build("diff-v1", V1), images.build("diff-v2", V2)


def diff_json(imagescope: Cli, old: str, new: str, *extra: str) -> tuple[int, dict, str]:  # type: ignore[type-arg]
    result = imagescope("diff", old, new, "--format", "json", "--pull", "never", *extra)
    assert result.exit_code in (ExitCode.OK, ExitCode.GATE_FAILED), result.stderr
    return result.exit_code, json.loads(result.stdout), result.stderr


def test_diff_of_two_engine_versions(imagescope: Cli, versions: tuple[str, str],
                                     base_image: BaseImage) -> None:
    old, new = versions
    code, doc, _ = diff_json(imagescope, old, new)
    assert code == ExitCode.OK
    summary = doc["summary"]
    base = base_image.layer_count
    # the base and the identical first RUN are shared
    assert summary["shared_layers"] == base + 1
    assert summary["layer_count"] == {"old": base + 2, "new": base + 4, "delta": 2}
    # v1 version file: "v1\n" (3 bytes); v2: "v2-changed\n" (11 bytes) + 6000 written and removed
    assert summary["total_bytes"]["delta"] == (11 - 3) + 6000
    assert summary["final_bytes"]["delta"] == 11 - 3
    assert summary["wasted_bytes"] == {"old": 0, "new": 6000, "delta": 6000}
    assert summary["new_waste_bytes"] == 6000
    assert summary["new_waste_by_step"] == [
        {"instruction": "RUN dd if=/dev/zero of=/blob bs=1000 count=6", "bytes": 6000}]
    statuses = [(s["status"], s["old_instruction"], s["new_instruction"])
                for s in doc["steps"][base:]]
    assert statuses == [
        ("unchanged", V1.splitlines()[0], V2.splitlines()[0]),
        ("changed", "RUN echo v1 > /app/version", "RUN echo v2-changed > /app/version"),
        ("added", None, "RUN dd if=/dev/zero of=/blob bs=1000 count=6"),
        ("added", None, "RUN rm /blob"),
    ]
    files = {f["path"]: (f["status"], f["size"], f["changes"]) for f in doc["files"]}
    assert files["/app/version"] == ("changed", {"old": 3, "new": 11, "delta": 8}, ["size"])
    assert [f["rule"] for f in doc["new_findings"]] == ["hidden-waste"]


def test_engine_against_an_archive_of_the_same_image(
        imagescope: Cli, versions: tuple[str, str], docker_client: docker.DockerClient,
        tmp_path: Path) -> None:
    old, new = versions
    archive = tmp_path / "v1.tar"
    with archive.open("wb") as handle:
        for chunk in docker_client.images.get(old).save(named=True):
            handle.write(chunk)
    by_name = diff_json(imagescope, old, new)[1]
    mixed = diff_json(imagescope, f"docker-archive:{archive}", new)[1]
    assert mixed["summary"] == by_name["summary"]
    assert mixed["steps"] == by_name["steps"]
    assert mixed["files"] == by_name["files"]
    same = diff_json(imagescope, f"docker-archive:{archive}", old)[1]
    assert same["files"] == [] and same["new_findings"] == [] and same["resolved_findings"] == []
    assert same["summary"]["total_bytes"]["delta"] == 0


def test_gates_on_the_engine_diff(imagescope: Cli, versions: tuple[str, str],
                                  base_image: BaseImage) -> None:
    old, new = versions
    code, doc, stderr = diff_json(imagescope, old, new, "--max-new-waste", "5999")
    assert code == ExitCode.GATE_FAILED
    assert doc["gates"] == [{"gate": "max-new-waste", "passed": False,
                             "message": "new waste 6,000 bytes (5.9 KiB) written by own steps, "
                                        "limit 5,999 bytes (5.9 KiB): 1 bytes over"}]
    assert "imagescope: gate failed: max-new-waste" in stderr
    code, doc, _ = diff_json(imagescope, old, new, "--max-growth", "6008",
                             "--max-new-waste", "6000")
    assert code == ExitCode.OK
    assert [g["passed"] for g in doc["gates"]] == [True, True]


def test_base_image_is_reported_apart(imagescope: Cli, versions: tuple[str, str],
                                      base_image: BaseImage) -> None:
    _, new = versions
    result = imagescope("inspect", new, "--format", "json", "--pull", "never",
                        "--base", base_image.tag, "--own-only", "--max-wasted", "6000")
    assert result.exit_code == ExitCode.OK, result.stderr
    doc = json.loads(result.stdout)
    assert doc["base"]["layer_count"] == base_image.layer_count
    assert doc["base"]["own_wasted_bytes"] == 6000
