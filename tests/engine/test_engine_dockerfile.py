"""`--dockerfile` on an image the engine built from a multi-stage Dockerfile (the legacy
builder): every layer at the line range that made it; an edited Dockerfile is a mismatch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imagescope.errors import ExitCode
from tests.engine.support import Cli, SessionImages

pytestmark = pytest.mark.engine

# `SessionImages.build` writes `FROM busybox:local` as line 1 (stage 0)
STAGES = """\
RUN echo built > /artifact
FROM busybox:local
WORKDIR /app
COPY --from=0 /artifact /app/artifact
ENV X=1
RUN echo run > /app/run.txt \\
 && echo more >> /app/run.txt
COPY a.txt /app/
CMD ["sh"]
"""


@pytest.fixture(scope="module")
def built(images: SessionImages, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    reference = images.build("multi-stage", STAGES, {"a.txt": b"context\n"})
    path = tmp_path_factory.mktemp("dockerfile") / "Dockerfile"
    path.write_text(images.dockerfile_text(STAGES))
    return reference, path


def test_every_layer_maps_to_its_dockerfile_lines(imagescope: Cli,
                                                  built: tuple[str, Path]) -> None:
    reference, path = built
    result = imagescope("inspect", reference, "--pull", "never", "--format", "json",
                        "--dockerfile", str(path))
    assert result.exit_code == ExitCode.OK, result.stderr
    layers = json.loads(result.stdout)["layers"]
    lines = [(layer["dockerfile"]["start_line"], layer["dockerfile"]["end_line"])
             for layer in layers]
    # base (FROM, line 3); WORKDIR made /app (line 4); COPY --from (5); RUN (7-8); COPY (9)
    assert lines == [(3, 3), (4, 4), (5, 5), (7, 8), (9, 9)]
    assert layers[0]["dockerfile"]["base"] is True
    assert layers[2]["dockerfile"]["from_stage"] == {"name": None, "start_line": 1,
                                                     "end_line": 2}
    table = imagescope("inspect", reference, "--pull", "never", "--dockerfile", str(path))
    assert "Dockerfile:7-8 RUN echo run > /app/run.txt" in table.stdout


def test_an_edited_dockerfile_is_reported_and_the_history_shown(
        imagescope: Cli, built: tuple[str, Path], tmp_path: Path) -> None:
    reference, path = built
    edited = tmp_path / "Dockerfile"
    edited.write_text(path.read_text().replace("COPY a.txt /app/", "COPY a.txt /srv/"))
    result = imagescope("inspect", reference, "--pull", "never", "--format", "json",
                        "--dockerfile", str(edited))
    assert result.exit_code == ExitCode.OK, result.stderr
    document = json.loads(result.stdout)
    assert all(layer["dockerfile"] is None for layer in document["layers"])
    assert any("do not match" in w and "destination /app/ where the Dockerfile has /srv/" in w
               for w in document["warnings"])
