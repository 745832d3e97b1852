"""History `created_by` → Dockerfile instruction, and matching steps to layers."""

from __future__ import annotations

import pytest

from imagescope.history import attribute, instruction_of
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
