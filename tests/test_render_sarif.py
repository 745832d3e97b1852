"""`--format sarif`: valid SARIF 2.1.0 (the OASIS schema, tests/data, from Microsoft's
@microsoft/jest-sarif package), results at the Dockerfile lines of the steps to change, exact
bytes, stable rule ids and fingerprints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from imagescope.errors import ExitCode
from imagescope.render.sarif import RULES, WASTE_RESULT_BYTES
from tests.cli import run_cli

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "tests/data/sarif-2.1.0-rtm.5.json").read_text())
EXAMPLE = str(ROOT / "fixtures/example-image.tar")
DOCKERFILE = str(ROOT / "fixtures/example-image.Dockerfile")


def sarif(*args: str) -> dict[str, Any]:
    result = run_cli("inspect", EXAMPLE, "--format", "sarif", *args, cwd=ROOT)
    assert result.exit_code == ExitCode.OK, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


@pytest.mark.parametrize("args", [(), ("--dockerfile", DOCKERFILE)],
                         ids=["without-dockerfile", "with-dockerfile"])
def test_the_log_validates_against_the_sarif_schema(args: tuple[str, ...]) -> None:
    jsonschema.Draft4Validator(SCHEMA).validate(sarif(*args))


def test_results_sit_at_the_dockerfile_line_of_the_step_to_change() -> None:
    run = sarif("--dockerfile", DOCKERFILE)["runs"][0]
    by_rule = {result["ruleId"]: result for result in run["results"]}
    # hidden waste: written by step 1 (RUN apt-get install, line 4), hidden by step 2
    hidden = next(r for r in run["results"] if r["ruleId"] == "hidden-waste"
                  and r["properties"]["layers"] == [1, 2])
    region = hidden["locations"][0]["physicalLocation"]["region"]
    assert (region["startLine"], region["endLine"]) == (4, 4)
    # layer 1's files hidden by layer 2: 10,000 + 8,000 + 7,000 + 6,000 + 5,000 + 4,000 + 3,000
    # + 3,000 + 1,300 bytes
    assert hidden["properties"]["bytes"] == 47_300
    assert "47,300 bytes" in hidden["message"]["text"]
    # the base's /etc/ld.so.cache overwritten by step 1: at step 1 too, not at the FROM line
    base_hidden = next(r for r in run["results"] if r["ruleId"] == "hidden-waste"
                       and r["properties"]["layers"] == [0, 1])
    assert base_hidden["locations"][0]["physicalLocation"]["region"]["startLine"] == 4
    # the .git directory: COPY . /app (line 8)
    context = by_rule["build-context"]["locations"][0]["physicalLocation"]  # (either one)
    assert context["region"]["startLine"] == 8
    # relative to the working directory (the repository's root here), as code scanning wants
    assert context["artifactLocation"]["uri"] == "fixtures/example-image.Dockerfile"
    # no line for the image as a whole
    assert "region" not in by_rule["root-user"]["locations"][0]["physicalLocation"]
    # every rule a result names is declared, with help
    declared = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    assert all(declared[r["ruleIndex"]] == r["ruleId"] for r in run["results"])
    assert set(declared) == set(RULES)


def test_fingerprints_stay_put_when_the_lines_move(tmp_path: Path) -> None:
    moved = tmp_path / "Dockerfile"
    moved.write_text("# a comment\n\n" + Path(DOCKERFILE).read_text())
    before = sarif("--dockerfile", DOCKERFILE)["runs"][0]["results"]
    after = sarif("--dockerfile", str(moved))["runs"][0]["results"]
    assert [r["partialFingerprints"] for r in before] == [r["partialFingerprints"]
                                                          for r in after]
    lines = [r["locations"][0]["physicalLocation"].get("region", {}).get("startLine")
             for r in before]
    moved_lines = [r["locations"][0]["physicalLocation"].get("region", {}).get("startLine")
                   for r in after]
    assert [line + 2 if line else line for line in lines] == moved_lines


def test_small_wasted_files_are_not_results_of_their_own() -> None:
    results = sarif()["runs"][0]["results"]
    assert WASTE_RESULT_BYTES == 1 << 20
    assert not [r for r in results if r["ruleId"] == "wasted-file"]  # all under 1 MiB here


def test_sarif_is_for_inspect_only() -> None:
    result = run_cli("diff", EXAMPLE, EXAMPLE, "--format", "sarif")
    assert result.exit_code == ExitCode.USAGE
    assert result.stderr.count("\n") == 1 and "inspect" in result.stderr


def test_one_path_wasted_twice_gives_two_alerts(tmp_path: Path) -> None:
    from fixtures import imagegen as g

    big = 1 << 21  # 2 MiB: a result of its own
    layers = [g.layer_tar([g.file("app/blob.bin", size=big, seed="one")]),
              g.layer_tar([g.file("app/blob.bin", size=big, seed="two")]),
              g.layer_tar([g.whiteout("app/blob.bin")])]
    image = tmp_path / "image.tar"
    g.write_docker_legacy(image, g.ImageSpec(layers=layers))
    result = run_cli("inspect", str(image), "--format", "sarif", cwd=ROOT)
    assert result.exit_code == ExitCode.OK, result.stderr
    wasted = [r for r in json.loads(result.stdout)["runs"][0]["results"]
              if r["ruleId"] == "wasted-file"]
    assert [r["properties"]["bytes"] for r in wasted] == [big, big]
    assert len({r["partialFingerprints"]["imagescope/v1"] for r in wasted}) == 2
