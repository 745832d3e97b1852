"""`imagescope diff` and the CI gates end to end: archives of two versions, exit codes, config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fixtures import imagegen as g
from imagescope.errors import ExitCode
from tests.cli import run_cli

BASE = g.Step("/bin/sh -c #(nop) ADD file:0123abcd in / ")
BASE_LAYER = g.layer_tar([g.dir("bin"), g.file("bin/sh", size=1000), g.dir("etc"),
                          g.file("etc/os-release", size=100)])
BASE_BYTES = 1000 + 100  # bin/sh and etc/os-release


def version(deps: list[g.Spec], code: list[g.Spec], *, cleanup: list[g.Spec] | None = None,
            deps_step: str = "pip install flask") -> g.ImageSpec:
    layers = [BASE_LAYER, g.layer_tar(deps), g.layer_tar(code)]
    history = [BASE, g.Step(f"/bin/sh -c {deps_step}"),
               g.Step("/bin/sh -c #(nop) COPY dir:aa in /app ")]
    if cleanup is not None:
        layers.append(g.layer_tar(cleanup))
        history.append(g.Step("/bin/sh -c rm -rf /root/.cache/pip"))
    return g.ImageSpec(layers=layers, history=history, user="1000")


OLD = version([g.dir("app"), g.file("app/flask.py", size=5000, seed="flask")],
              [g.file("app/main.py", size=300, seed="main-1"), g.file("app/old.py", size=40)])
NEW = version([g.dir("app"), g.file("app/flask.py", size=5000, seed="flask"),
               g.file("app/requests.py", size=2000), g.dir("root"), g.dir("root/.cache"),
               g.dir("root/.cache/pip"), g.file("root/.cache/pip/wheel", size=700)],
              [g.file("app/main.py", size=300, seed="main-2")],
              cleanup=[g.whiteout("root/.cache/pip")],
              deps_step="pip install flask requests")


@pytest.fixture()
def images(tmp_path: Path) -> tuple[Path, Path, Path]:
    old = tmp_path / "old.tar"
    new = tmp_path / "new.oci.tar"
    g.write_docker_legacy(old, OLD)
    g.write_oci_archive(new, NEW, compression="zstd")  # mixed sources and compressions
    base = tmp_path / "base.tar"
    g.write_docker_legacy(base, g.ImageSpec(layers=[BASE_LAYER], history=[BASE]))
    work = tmp_path / "work"
    work.mkdir()
    return old, new, base


run = run_cli


def test_diff_json_of_mixed_sources(images: tuple[Path, Path, Path]) -> None:
    old, new, _ = images
    result = run("diff", str(old), str(new), "--format", "json", cwd=old.parent / "work")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    summary = doc["summary"]
    # old: 1100 + 5000 + 340 = 6440; new: 1100 + 7700 + 300 = 9100, of which 700 wasted
    assert summary["total_bytes"] == {"old": 6440, "new": 9100, "delta": 2660}
    assert summary["final_bytes"] == {"old": 6440, "new": 8400, "delta": 1960}
    assert summary["wasted_bytes"] == {"old": 0, "new": 700, "delta": 700}
    assert summary["layer_count"] == {"old": 3, "new": 4, "delta": 1}
    assert (summary["shared_layers"], summary["shared_bytes"]) == (1, 1100)
    assert summary["new_waste_bytes"] == 700
    assert summary["new_waste_by_step"] == [
        {"instruction": "RUN pip install flask requests", "bytes": 700}]
    assert [(s["status"], s["old_index"], s["new_index"]) for s in doc["steps"]] == [
        ("unchanged", 0, 0), ("changed", 1, 1), ("rebuilt", 2, 2), ("added", None, 3)]
    files = {f["path"]: (f["status"], f["changes"]) for f in doc["files"]}
    assert files == {"/app/requests.py": ("added", []), "/app/old.py": ("removed", []),
                     "/app/main.py": ("changed", ["content"])}
    assert [f["rule"] for f in doc["new_findings"]] == ["hidden-waste"]
    assert doc["gates"] == []


def test_diff_markdown_is_a_stable_pr_comment(images: tuple[Path, Path, Path]) -> None:
    old, new, _ = images
    first = run("diff", str(old), str(new), "--format", "markdown", cwd=old.parent / "work")
    second = run("diff", str(old), str(new), "--format", "markdown", "--no-cache",
                 cwd=old.parent / "work")
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    text = first.stdout
    assert text.startswith("<!-- imagescope-diff -->")
    assert "This change adds 2.6 KiB (+41.3%); new waste: 700 B, most from " \
           "`RUN pip install flask requests`." in text
    assert text.count("<details>") == text.count("</details>") == 2
    assert len(text.encode()) < 65_536


def test_diff_table(images: tuple[Path, Path, Path]) -> None:
    old, new, _ = images
    result = run("diff", str(old), str(new), cwd=old.parent / "work")
    assert result.returncode == 0, result.stderr
    assert "RUN pip install flask → RUN pip install flask requests" in result.stdout
    assert "+41.3%" in result.stdout


@pytest.mark.parametrize(("args", "code", "gate"), [
    (["--max-growth", "2660"], 0, None),
    (["--max-growth", "2659"], 1,
     "max-growth: grew 2,660 bytes (2.6 KiB) (+41.3%), limit 2659 bytes: 1 bytes over"),
    (["--max-growth", "42%"], 0, None),
    (["--max-growth", "41%"], 1, "max-growth"),
    (["--max-new-waste", "700"], 0, None),
    (["--max-new-waste", "699"], 1, "max-new-waste: new waste 700 bytes written by own steps, limit 699 bytes"),
    (["--max-wasted", "699"], 1, "max-wasted: wasted 700 bytes, limit 699 bytes"),
    (["--max-wasted", "0", "--ignore", "/root/.cache/*"], 0, None),
    (["--min-efficiency", "92%"], 0, None),  # 8400 / 9100 = 92.3 %
    (["--min-efficiency", "0.93"], 1, "min-efficiency"),
    (["--max-size", "9100"], 0, None),
    (["--max-size", "9kB"], 1, "max-size: size 9,100 bytes (8.9 KiB), limit 9,000 bytes (8.8 KiB): 100 bytes over"),
])
def test_diff_gates(images: tuple[Path, Path, Path], args: list[str], code: int,
                    gate: str | None) -> None:
    old, new, _ = images
    result = run("diff", str(old), str(new), "--format", "json", *args, cwd=old.parent / "work")
    assert result.returncode == code, result.stderr
    doc = json.loads(result.stdout)  # the report is written even when a gate fails
    assert [g["passed"] for g in doc["gates"]] == [code == 0]
    if gate:
        assert f"imagescope: gate failed: {gate}" in result.stderr


def test_inspect_gates_and_secrets(tmp_path: Path) -> None:
    image = tmp_path / "secret.tar"
    g.write_docker_legacy(image, g.ImageSpec(
        layers=[BASE_LAYER, g.layer_tar([g.dir("app"), g.file("app/.env", b"TOKEN=abc123\n")])],
        history=[BASE, g.Step("/bin/sh -c #(nop) COPY dir:bb in /app ")], user="1000"))
    failing = run("inspect", str(image), "--fail-on-secrets", cwd=tmp_path)
    assert failing.returncode == ExitCode.GATE_FAILED
    assert "FAIL fail-on-secrets: 1 secret file(s) in the image: /app/.env" in failing.stdout
    assert "abc123" not in failing.stdout + failing.stderr
    ignored = run("inspect", str(image), "--fail-on-secrets", "--ignore", "/app/.env",
                  cwd=tmp_path)
    assert ignored.returncode == 0, ignored.stderr


def test_base_and_own_only(images: tuple[Path, Path, Path]) -> None:
    old, new, base = images
    result = run("inspect", str(new), "--base", str(base), "--own-only", "--max-wasted", "700",
                 "--format", "json", cwd=old.parent / "work")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["base"] == {"reference": str(base), "detected_from": "base-option",
                           "layer_count": 1, "base_bytes": BASE_BYTES, "own_wasted_bytes": 700,
                           "base_hidden_bytes": 0, "inherited_wasted_bytes": 0}
    assert doc["gates"][0]["message"] == "own wasted 700 bytes, limit 700 bytes"


def test_own_only_without_a_known_base_counts_every_layer(
        images: tuple[Path, Path, Path]) -> None:
    """No --base and no FROM boundary in the history: every layer is the image's own."""
    _, new, _ = images
    result = run("inspect", str(new), "--own-only", "--max-wasted", "699", "--format", "json",
                 cwd=new.parent / "work")
    assert result.returncode == ExitCode.GATE_FAILED, result.stderr
    assert "base" not in json.loads(result.stdout)


def test_config_file_found_upward_and_flags_win(images: tuple[Path, Path, Path]) -> None:
    old, new, _ = images
    project = old.parent / "work"
    (project / "pyproject.toml").write_text('[tool.imagescope]\nmax-growth = "10%"\n'
                                            'max-new-waste = "1MB"\n')
    deep = project / "src" / "pkg"
    deep.mkdir(parents=True)
    from_file = run("diff", str(old), str(new), "--format", "json", cwd=deep)
    assert from_file.returncode == ExitCode.GATE_FAILED
    assert [(g["gate"], g["passed"]) for g in json.loads(from_file.stdout)["gates"]] == [
        ("max-growth", False), ("max-new-waste", True)]
    overridden = run("diff", str(old), str(new), "--max-growth", "50%", cwd=deep)
    assert overridden.returncode == 0, overridden.stderr
    (project / ".imagescope.toml").write_text("max-growth = 12\n")  # beats pyproject there
    assert run("diff", str(old), str(new), cwd=deep).returncode == ExitCode.GATE_FAILED


def test_bad_config_and_bad_sizes_are_errors_not_gate_failures(
        images: tuple[Path, Path, Path]) -> None:
    old, new, _ = images
    work = old.parent / "work"
    bad_size = run("diff", str(old), str(new), "--max-growth", "lots", cwd=work)
    assert bad_size.returncode == ExitCode.USAGE
    assert len(bad_size.stderr.strip().splitlines()) == 1
    (work / ".imagescope.toml").write_text("max-wasted = [1, 2]\n")
    bad_config = run("inspect", str(old), cwd=work)
    assert bad_config.returncode == ExitCode.CONFIG_ERROR
    assert ".imagescope.toml: max-wasted must be a size" in bad_config.stderr


@pytest.mark.parametrize("name", [".imagescope.toml", "pyproject.toml"])
def test_a_config_file_that_is_not_utf8_is_a_config_error(images: tuple[Path, Path, Path],
                                                          name: str) -> None:
    """Not an internal error (exit 70): a file is bad input like any other."""
    old, _, _ = images
    work = old.parent / "work"
    (work / name).write_bytes(b"[tool.imagescope]\nmax-wasted = '\xff'\n")
    result = run("inspect", str(old), cwd=work)
    assert result.returncode == ExitCode.CONFIG_ERROR
    assert result.stderr.startswith("imagescope: error: ")
    assert f"{name}: invalid TOML (not UTF-8: invalid start byte at byte 32)" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_errors_keep_their_codes_in_diff(images: tuple[Path, Path, Path]) -> None:
    old, _, _ = images
    result = run("diff", str(old), str(old.parent / "missing.tar"), "--max-growth", "1",
                 cwd=old.parent / "work")
    assert result.returncode == ExitCode.SOURCE_NOT_FOUND
    assert result.returncode != ExitCode.GATE_FAILED


def test_shared_layers_are_read_once(images: tuple[Path, Path, Path]) -> None:
    old, new, _ = images
    result = run("diff", str(old), str(new), "--stats", "--format", "json",
                 cwd=old.parent / "work")
    assert result.returncode == 0, result.stderr
    # 3 + 4 layers; the base layer is read once and served from the cache the second time
    assert "layers: 6 read, 1 from cache" in result.stderr


@pytest.mark.parametrize(("args", "code"), [
    (["--max-wasted", "700"], 0), (["--max-wasted", "699"], 1),
    (["--min-efficiency", "0.92"], 0), (["--min-efficiency", "93%"], 1),
    (["--max-size", "9100"], 0), (["--max-size", "9099"], 1),
    (["--fail-on-secrets"], 0),  # NEW holds no secret
])
def test_inspect_gates(images: tuple[Path, Path, Path], args: list[str], code: int) -> None:
    _, new, _ = images
    result = run("inspect", str(new), "--format", "json", *args, cwd=new.parent / "work")
    assert result.returncode == code, result.stderr
    assert [g["passed"] for g in json.loads(result.stdout)["gates"]] == [code == 0]
