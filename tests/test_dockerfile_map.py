"""Layers mapped to Dockerfile lines (`analysis.dockerfile_map`), the Dockerfile read by the
real parser (`dockerfile`, moby/buildkit's) and the histories written as the legacy builder and
BuildKit write them; expected line ranges worked out by hand from the Dockerfile text."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagescope.analysis.dockerfile_map import location, map_layers
from imagescope.dockerfile import parse_dockerfile
from imagescope.errors import ExitCode, ImagescopeError
from tests.cli import run_cli

DOCKERFILE = """\
# syntax=docker/dockerfile:1
ARG VERSION=1
FROM busybox AS build
RUN echo a > /x \\
  && echo b >> /x
FROM busybox
WORKDIR /app
ENV A=1 B=2
COPY --from=build /x /app/x
RUN touch /nothing-changed
COPY . /app/ctx
RUN chmod -R a+r /app \\
    && rm -rf /tmp/*
USER 1000
CMD ["sh"]
"""
# The layers, bottom-up: the base's, WORKDIR (it made /app), COPY --from, (RUN touch made one
# too), COPY ., RUN chmod.
LEGACY = ["/bin/sh -c #(nop) ADD file:0123 in / ",
          "/bin/sh -c #(nop) WORKDIR /app",
          "/bin/sh -c #(nop) COPY file:2f54 in /app/x ",
          "/bin/sh -c touch /nothing-changed",
          "/bin/sh -c #(nop) COPY dir:eeb7 in /app/ctx ",
          "/bin/sh -c chmod -R a+r /app     && rm -rf /tmp/*"]
BUILDKIT = ["/bin/sh -c #(nop) ADD file:0123 in / ",
            "WORKDIR /app",
            "COPY /x /app/x # buildkit",
            "RUN /bin/sh -c touch /nothing-changed # buildkit",
            "COPY . /app/ctx # buildkit",
            "RUN /bin/sh -c chmod -R a+r /app     && rm -rf /tmp/* # buildkit"]


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "Dockerfile"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("history", [LEGACY, BUILDKIT], ids=["legacy", "buildkit"])
def test_every_layer_maps_to_its_line_range(tmp_path: Path, history: list[str]) -> None:
    path = write(tmp_path, DOCKERFILE)
    mapped = map_layers(path, parse_dockerfile(path), history, base_layers=1)
    assert mapped.mismatch is None
    assert [location(source, path) for source in mapped.sources] == [
        "Dockerfile:6", "Dockerfile:7", "Dockerfile:9", "Dockerfile:10", "Dockerfile:11",
        "Dockerfile:12-13"]
    assert mapped.sources[0] is not None and mapped.sources[0].base
    copied = mapped.sources[2]
    assert copied is not None and copied.from_stage is not None
    assert (copied.from_stage.name, copied.from_stage.start.start_line,
            copied.from_stage.end_line) == ("build", 3, 5)


def test_a_run_that_changed_nothing_made_no_layer_and_is_passed_over(tmp_path: Path) -> None:
    path = write(tmp_path, DOCKERFILE)
    without = LEGACY[:3] + LEGACY[4:]  # `RUN touch` recorded as an empty layer: no layer
    mapped = map_layers(path, parse_dockerfile(path), without, base_layers=1)
    assert mapped.mismatch is None
    assert [location(s, path) for s in mapped.sources] == [
        "Dockerfile:6", "Dockerfile:7", "Dockerfile:9", "Dockerfile:11", "Dockerfile:12-13"]


@pytest.mark.parametrize("edit, why", [
    (("COPY . /app/ctx", "COPY . /app/context"), ("destination /app/ctx where the Dockerfile "
                                                 "has /app/context")),
    # another command: that RUN could have made no layer, so the walk goes on to COPY .
    (("chmod -R a+r /app", "chmod -R a+rw /app"), "RUN where the Dockerfile has COPY"),
    (("CMD [\"sh\"]", "COPY extra /extra\nCMD [\"sh\"]"), "does not match"),
    (("WORKDIR /app\n", "WORKDIR /app\nCOPY early /early\n"), ("WORKDIR where the Dockerfile "
                                                                "has COPY")),
    (("FROM busybox\n", "FROM busybox\nCOPY first /first\n"), "made no layer of the image"),
])
def test_an_edited_dockerfile_is_a_mismatch_never_a_guess(tmp_path: Path, edit: tuple[str, str],
                                                          why: str) -> None:
    path = write(tmp_path, DOCKERFILE.replace(*edit))
    mapped = map_layers(path, parse_dockerfile(path), LEGACY, base_layers=1)
    assert mapped.mismatch is not None and why in mapped.mismatch
    assert mapped.sources == (None,) * len(LEGACY)


def test_a_base_of_another_size_than_the_history_says_is_a_mismatch(tmp_path: Path) -> None:
    path = write(tmp_path, DOCKERFILE)
    none = map_layers(path, parse_dockerfile(path), LEGACY, base_layers=0)
    assert none.mismatch is not None and "puts 0 in the base image" in none.mismatch
    # a base of four layers leaves COPY --from (line 9) without one
    four = map_layers(path, parse_dockerfile(path), LEGACY, base_layers=4)
    assert four.mismatch is not None and ":9 (COPY --from=build /x /app/x) made no layer" in (
        four.mismatch)


def test_an_unreadable_dockerfile_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ImagescopeError, match="no such file") as missing:
        parse_dockerfile(str(tmp_path / "nope"))
    assert missing.value.exit_code == ExitCode.SOURCE_NOT_FOUND
    result = run_cli("inspect", "fixtures/example-image.tar", "--dockerfile",
                     str(tmp_path / "nope"), cwd=Path(__file__).resolve().parent.parent)
    assert result.exit_code == ExitCode.SOURCE_NOT_FOUND
    assert result.stderr.count("\n") == 1


def test_the_config_file_names_the_dockerfile_relative_to_itself(tmp_path: Path) -> None:
    import json
    import shutil

    project = tmp_path / "project"
    (project / "docker").mkdir(parents=True)
    shutil.copy(Path(__file__).resolve().parent.parent / "fixtures/example-image.Dockerfile",
                project / "docker" / "Dockerfile")
    (project / ".imagescope.toml").write_text('dockerfile = "docker/Dockerfile"\n')
    (project / "sub").mkdir()
    image = str(Path(__file__).resolve().parent.parent / "fixtures/example-image.tar")
    result = run_cli("inspect", image, "--format", "json", cwd=project / "sub")
    assert result.exit_code == ExitCode.OK, result.stderr
    layers = json.loads(result.stdout)["layers"]
    # FROM (3), RUN (4), RUN (5-6), RUN (7), COPY (8): the example's Dockerfile, by hand
    assert [(layer["dockerfile"]["start_line"], layer["dockerfile"]["end_line"])
            for layer in layers] == [(3, 3), (4, 4), (5, 6), (7, 7), (8, 8)]
    assert layers[0]["dockerfile"]["path"] == str(project / "docker" / "Dockerfile")


def test_without_the_base_boundary_a_run_passed_over_is_a_mismatch(tmp_path: Path) -> None:
    path = write(tmp_path, "FROM alpine\nRUN apk add foo\nRUN apk add bar\n")
    history = ["/bin/sh -c #(nop) ADD file:0123 in / ", "/bin/sh -c pip install x",
               "/bin/sh -c rm -rf /tmp"]
    mapped = map_layers(path, parse_dockerfile(path), history, base_layers=None)
    assert mapped.mismatch is not None
    assert ":3 (RUN apk add bar) matches no layer" in mapped.mismatch
