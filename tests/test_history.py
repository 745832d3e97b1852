"""History `created_by` → Dockerfile instruction, and matching steps to layers."""

from __future__ import annotations

import pytest

from imagescope.analysis.history import attribute, base_layer_count, instruction_of
from imagescope.model import HistoryStep


@pytest.mark.parametrize(("created_by", "instruction"), [
    ("/bin/sh -c #(nop) COPY file:3a4b in /app ", "COPY file:3a4b in /app"),
    ("/bin/sh -c #(nop)  CMD [\"sh\"]", 'CMD ["sh"]'),
    ("/bin/sh -c apt-get update && apt-get install -y gcc", "RUN apt-get update && apt-get install -y gcc"),
    ("|2 VERSION=1.2 MODE= /bin/sh -c make install", "RUN make install"),
    ("RUN /bin/sh -c pip install -r req.txt # buildkit", "RUN pip install -r req.txt"),
    ("COPY . /app # buildkit", "COPY . /app"),
    ("WORKDIR /app", "WORKDIR /app"),
    ("/bin/bash -c echo hi", "RUN echo hi"),
])
def test_instruction_of(created_by: str, instruction: str) -> None:
    assert instruction_of(created_by) == instruction


def test_empty_layer_steps_are_skipped() -> None:
    history = [HistoryStep("ADD rootfs"), HistoryStep("ENV A=1", empty_layer=True),
               HistoryStep("RUN x")]
    result = attribute(history, 2)
    assert [s.created_by if s else None for s in result.steps] == ["ADD rootfs", "RUN x"]
    assert result.warning is None


def test_count_mismatch_falls_back_to_layer_numbers() -> None:
    result = attribute([HistoryStep("ADD rootfs")], 2)
    assert result.steps == [None, None]
    assert result.warning is not None and "1 layer-producing steps for 2 layers" in result.warning


def _steps(*texts: str) -> list[HistoryStep]:
    """`+TEXT` makes a layer, `TEXT` an empty-layer step."""
    return [HistoryStep(t[1:]) if t.startswith("+") else HistoryStep(t, empty_layer=True)
            for t in texts]


@pytest.mark.parametrize(("history", "layers", "base"), [
    # FROM debian:bookworm: its rootfs, its CMD; then four own steps and the image's own CMD
    (_steps("+/bin/sh -c #(nop) ADD file:ab12 in / ", '/bin/sh -c #(nop)  CMD ["bash"]',
            "+RUN /bin/sh -c apt-get update # buildkit", "+RUN /bin/sh -c apt-get install # buildkit",
            "+COPY app.sh /app/ # buildkit", "+RUN /bin/sh -c chmod +x /app/app.sh # buildkit",
            'CMD ["/app/app.sh"]'), 5, 1),
    # python on debian: the nearest base is the one before the own steps
    (_steps("+ADD rootfs", 'CMD ["bash"]', "+RUN apt-get install python", "+RUN pip install",
            'CMD ["python3"]', "+COPY . /app", 'ENTRYPOINT ["/app/run"]'), 4, 3),
    (_steps("+ADD rootfs", "+RUN x", 'CMD ["sh"]'), 2, 0),  # only the image's own CMD
    (_steps("+ADD rootfs", "+RUN x"), 2, 0),  # no CMD at all
    (_steps('CMD ["sh"]', "+ADD rootfs", "+RUN x"), 2, 0),  # nothing before it
    (_steps("+ADD rootfs", 'CMD ["sh"]', "+RUN x"), 3, 0),  # history does not match the layers
])
def test_the_base_ends_at_the_last_cmd_with_layers_after_it(history: list[HistoryStep],
                                                            layers: int, base: int) -> None:
    assert base_layer_count(history, layers) == base


@pytest.mark.parametrize("recorded, shown", [
    ("COPY dir:0b6f4c1e2d3a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9012345678 in .",
     "COPY … → ."),
    ("COPY file:2f542549e88b35752f1df461ce0972f75abdebde3231d178aa6c18de01ce453b in /app/x ",
     "COPY … → /app/x"),
    ("ADD multi:0b6f4c1e2d3a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9012345678 in /srv/",
     "ADD … → /srv/"),
    ("COPY . /app", "COPY . /app"),  # BuildKit records what was written
    ("RUN echo dir:x in /y", "RUN echo dir:x in /y"),
])
def test_legacy_copy_history_is_shown_as_written(recorded: str, shown: str) -> None:
    from imagescope.analysis.history import as_written

    assert as_written(recorded) == shown
