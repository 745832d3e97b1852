"""Images read straight from a real registry (Debian's docker-registry on loopback), with no
engine: the same figures as the OCI layout that was pushed, platforms picked through an index,
every layer fetched once per run, and what the layer cache holds not fetched at all."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from imagescope.errors import ExitCode
from tests.cli import run_cli
from tests.registry.conftest import Pushed
from tests.registry.servers import Registry
from tests.registry.support import fetched_layers, figures, inspect_json, one_line_error

pytestmark = pytest.mark.registry


@pytest.mark.parametrize("fetchers", ["1", "2"])  # layers fetched one by one, or side by side
@pytest.mark.parametrize("name", ["team/app:1", "team/zstd:1", "team/plain:1"])
def test_figures_equal_the_pushed_layouts(plain: Registry, pushed: Pushed, name: str,
                                          fetchers: str) -> None:
    from_registry = inspect_json(f"docker://{plain.address}/{name}", "--no-cache",
                                 env={"IMAGESCOPE_READERS": fetchers})
    from_layout = inspect_json(f"oci:{pushed.layouts[name]}", "--no-cache")
    assert figures(from_registry) == figures(from_layout)
    assert from_registry["image"]["source"] == "registry"
    assert from_registry["summary"]["wasted_bytes"] == 120_000  # the cache layer 1 wrote
    assert from_registry["image"]["repo_digest"] == (
        f"{plain.address}/{name.split(':')[0]}@{pushed.digests[name]}")


def test_one_platform_of_an_index(plain: Registry, pushed: Pushed) -> None:
    layout = pushed.layouts["team/multi:1"]
    arm = inspect_json(f"docker://{plain.address}/team/multi:1", "--platform",
                       "linux/arm64/v8")
    amd = inspect_json(f"docker://{plain.address}/team/multi:1", "--platform", "linux/amd64")
    assert figures(arm) == figures(inspect_json(f"oci:{layout}", "--platform",
                                                "linux/arm64/v8"))
    assert figures(amd) == figures(inspect_json(f"oci:{layout}", "--platform", "linux/amd64"))
    assert arm["image"]["platform"] == "linux/arm64/v8"
    assert arm["summary"]["total_bytes"] - amd["summary"]["total_bytes"] == 100_000  # 150k-50k


def test_a_platform_not_in_the_index_lists_those_there(plain: Registry, pushed: Pushed) -> None:
    result = run_cli("inspect", f"docker://{plain.address}/team/multi:1", "--platform",
                     "linux/s390x")
    assert result.exit_code == ExitCode.PLATFORM_NOT_FOUND
    line = one_line_error(result)
    assert "linux/amd64" in line and "linux/arm64/v8" in line


def test_by_digest(plain: Registry, pushed: Pushed) -> None:
    digest = pushed.digests["team/app:2"]
    report = inspect_json(f"docker://{plain.address}/team/app@{digest}")
    assert report["image"]["repo_digest"].endswith(digest)
    assert figures(report) == figures(inspect_json(f"oci:{pushed.layouts['team/app:2']}"))


@pytest.mark.parametrize(("name", "said"), [
    ("team/app:nope", "team/app"),
    ("team/nothing:1", "team/nothing"),
])
def test_a_missing_tag_or_repository_names_it(plain: Registry, pushed: Pushed, name: str,
                                              said: str) -> None:
    result = run_cli("inspect", f"docker://{plain.address}/{name}")
    assert result.exit_code == ExitCode.IMAGE_NOT_FOUND
    line = one_line_error(result)
    assert said in line and name.split(":")[1] in line


def test_a_manifest_of_an_unknown_media_type(plain: Registry, pushed: Pushed) -> None:
    from tests.registry.servers import push_blob, put_manifest

    config = b'{"mediaType":"application/vnd.example.thing"}'
    digest = push_blob(plain.url, "team/odd", config)
    artifact = json.dumps({"schemaVersion": 2,
                           "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.example.thing+json",
                                      "digest": digest, "size": len(config)},
                           "layers": []}).encode()
    put_manifest(plain.url, "team/odd", "1", artifact,
                 "application/vnd.oci.image.manifest.v1+json")
    result = run_cli("inspect", f"docker://{plain.address}/team/odd:1")
    assert result.exit_code == ExitCode.NOT_AN_IMAGE
    assert "application/vnd.example.thing+json" in one_line_error(result)


def test_diff_fetches_each_shared_layer_once(plain: Registry, pushed: Pushed) -> None:
    result = run_cli("diff", f"docker://{plain.address}/team/app:1",
                     f"docker://{plain.address}/team/app:2", "--no-cache", "--verbose",
                     "--format", "json")
    assert result.exit_code == 0, result.stderr
    fetched = fetched_layers(result)
    assert len(fetched) == len(set(fetched)) == 5  # 4 of app:1, then app:2's own last layer
    assert "shared with the other image (read once): 3" in result.stderr
    diff = json.loads(result.stdout)
    assert diff["summary"]["shared_layers"] == 3


def test_what_the_cache_holds_is_not_fetched(plain: Registry, pushed: Pushed) -> None:
    first = run_cli("inspect", f"docker://{plain.address}/team/app:1", "--verbose")
    assert first.exit_code == 0 and len(fetched_layers(first)) == 4
    again = run_cli("inspect", f"docker://{plain.address}/team/app:1", "--verbose")
    assert again.exit_code == 0 and fetched_layers(again) == []
    assert "reports from cache: 1" in again.stderr
    diff = run_cli("diff", f"docker://{plain.address}/team/app:1",
                   f"docker://{plain.address}/team/app:2", "--verbose")
    assert diff.exit_code == 0, diff.stderr
    assert len(fetched_layers(diff)) == 1  # app:2's own layer: the rest is in the cache


def test_a_registry_layer_serves_the_same_image_from_an_archive(plain: Registry,
                                                                pushed: Pushed) -> None:
    run_cli("inspect", f"docker://{plain.address}/team/app:1")
    result = run_cli("inspect", f"oci:{pushed.layouts['team/app:1']}", "--stats")
    assert result.exit_code == 0
    assert re.search(r"layers: 0 read, 4 from cache", result.stderr), result.stderr


def test_nothing_is_written_outside_the_cache(plain: Registry, pushed: Pushed,
                                              tmp_path: Path,
                                              private_cache_home: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    before = set(Path("/tmp").iterdir())
    result = run_cli("inspect", f"docker://{plain.address}/team/zstd:1", cwd=work)
    assert result.exit_code == 0
    assert list(work.iterdir()) == []
    assert set(Path("/tmp").iterdir()) - before == set()


@pytest.mark.parametrize("fetchers", ["1", "2"])
def test_progress_on_a_terminal_and_quiet_otherwise(plain: Registry, pushed: Pushed,
                                                    fetchers: str) -> None:
    image = f"docker://{plain.address}/team/app:1"
    shown = run_cli("inspect", image, "--no-cache", "--format", "json", "--progress",
                    env={"FORCE_TERMINAL": "1", "IMAGESCOPE_READERS": fetchers})
    assert shown.exit_code == 0, shown.stderr
    assert f"reading 4 layers of {plain.address}/team/app:1" in shown.stderr
    quiet = run_cli("inspect", image, "--no-cache", "--format", "json",
                    env={"IMAGESCOPE_READERS": fetchers})
    assert quiet.exit_code == 0 and quiet.stderr == ""
