"""A small image with waste of every kind, and the browser opened on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures import imagegen as g

pytest.importorskip("textual", reason="the tui extra (Textual) is not installed")

KEY = b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
APP = b"print('hello')\n"

# Layer 0: the base; 1: a toolchain, a pip cache and a key; 2: removes them; 3: the app,
# and rewrites /etc/motd unchanged.
LAYERS = [
    g.layer_tar([g.dir("etc"), g.file("etc/motd", b"welcome\n"), g.file("bin/sh", size=3000)]),
    g.layer_tar([g.file("usr/bin/gcc", size=9000), g.file("root/.cache/pip/wheel.whl", size=4000),
                 g.file("root/.ssh/id_rsa", KEY, mode=0o600)]),
    g.layer_tar([g.whiteout("usr/bin/gcc"), g.whiteout("root/.cache"),
                 g.whiteout("root/.ssh/id_rsa")]),
    g.layer_tar([g.file("app/main.py", APP), g.file("etc/motd", b"welcome\n")]),
]
STEPS = ["FROM scratch", "RUN apt-get install -y gcc && pip install x",
         "RUN rm -rf /usr/bin/gcc /root/.cache /root/.ssh/id_rsa", "COPY . /app"]


@pytest.fixture(scope="session")
def browse_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("browse") / "image.tar"
    history = [g.Step(created_by=f"/bin/sh -c #(nop) {step}" if i in (0, 3) else
                      f"/bin/sh -c {step.removeprefix('RUN ')}") for i, step in enumerate(STEPS)]
    g.write_docker_legacy(path, g.ImageSpec(layers=LAYERS, history=history))
    return path


@pytest.fixture
def opened(browse_image: Path) -> Iterator[object]:
    from imagescope import api

    with api.opened(str(browse_image)) as image:
        yield image
