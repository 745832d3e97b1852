"""Images built by `docker build`, for the realistic cases of `make bench`.

Two images, built on the engine tests' base (busybox, imported from the host's static busybox)
with the legacy builder, from build contexts made of real files of this machine:

- `python-app` (~1.1 GB, 11 layers): a Python runtime (the bench interpreter's standard
  library), `pip install` of wheels (the bench venv's site-packages zipped per package) with the
  wheel cache left in /root/.cache/pip and the wheels removed in a later step, model weights
  (pseudo-random, incompressible), `chmod -R` over them, `__pycache__` deleted, the app;
- `node-app` (~0.6 GB, 8 layers): a Node runtime (the host's `node` and npm's own tree),
  `COPY . .` of an app whose context holds vendored packages, `npm install` from them with the
  npm cache left behind, then `chown -R` of /app.

Each is saved once (`docker save`, the engine's legacy format) under `.bench/built/`; later runs
load the saved archive into the engine instead of building again.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.images import ROOT
from bench.run import (
    IMAGESCOPE,
    Case,
    Row,
    inspect_cmd,
    interleaved,
    layer_blobs,
    ratio,
    round_ratios,
    scope_env,
)

BUILT = ROOT / "built"
RECIPE_VERSION = 1  # bump when a context or a Dockerfile changes: images are built again
BASE_TAG = "busybox:local"
ENGINE_SH = Path(__file__).resolve().parent.parent / ".ci" / "engine.sh"
MIB = 1 << 20


@dataclass(frozen=True)
class Built:
    name: str  # the engine's tag
    archive: Path  # `docker save` of it


PYTHON_DOCKERFILE = """\
FROM busybox:local
COPY runtime/ /usr/local/lib/python3/
RUN mkdir -p /usr/local/lib/python3/site-packages /root/.cache/pip/wheels /app
COPY wheels/ /tmp/wheels/
RUN for w in /tmp/wheels/*.whl; do unzip -oq "$w" -d /usr/local/lib/python3/site-packages; done \\
    && cp /tmp/wheels/*.whl /root/.cache/pip/wheels/
RUN rm -rf /tmp/wheels
COPY model/ /models/
RUN chmod -R g+w /models
RUN find /usr/local/lib/python3 -name __pycache__ -type d | xargs rm -rf
COPY app/ /app/
RUN echo '{"workers": 2}' > /app/settings.json
CMD ["python3", "/app/main.py"]
"""

NODE_DOCKERFILE = """\
FROM busybox:local
COPY node/ /usr/local/
WORKDIR /app
COPY app/ /app/
RUN mkdir -p node_modules /root/.npm/_cacache \\
    && cp -r vendor/* node_modules/ \\
    && tar -cf /root/.npm/_cacache/index.tar vendor
RUN rm -rf vendor
RUN chown -R 1000:1000 /app
RUN echo 'NODE_ENV=production' > /app/.env
CMD ["node", "/app/server.js"]
"""


def _copy_tree(source: Path, target: Path) -> None:
    shutil.copytree(source, target, symlinks=True, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("site-packages", "dist-packages"))


def _pseudo_random(path: Path, nbytes: int, seed: str) -> None:
    rng = random.Random(seed)
    with path.open("wb") as out:
        left = nbytes
        while left:
            step = min(left, 8 * MIB)
            out.write(rng.randbytes(step))
            left -= step


def _site_packages() -> Path:
    return Path(sysconfig.get_paths()["purelib"])


def python_context(directory: Path) -> None:
    """runtime/ (the standard library), wheels/ (site-packages zipped per top-level name),
    model/ (4 × 96 MiB of weights and small JSON), app/."""
    _copy_tree(Path(sysconfig.get_paths()["stdlib"]), directory / "runtime")
    wheels = directory / "wheels"
    wheels.mkdir()
    groups: dict[str, list[Path]] = {}
    site = _site_packages()
    for item in sorted(site.iterdir()):
        key = item.name.split("-")[0].split(".")[0].lower()
        groups.setdefault(key, []).append(item)
    for key, items in sorted(groups.items()):
        with zipfile.ZipFile(wheels / f"{key}-1.0-py3-none-any.whl", "w",
                             zipfile.ZIP_DEFLATED) as wheel:
            for item in items:
                paths = [item] if item.is_file() else sorted(item.rglob("*"))
                for path in paths:
                    if path.is_file() and not path.is_symlink():
                        wheel.write(path, path.relative_to(site).as_posix())
    model = directory / "model"
    model.mkdir()
    for n in range(4):
        _pseudo_random(model / f"model-{n:05d}-of-00004.safetensors", 96 * MIB, f"weights-{n}")
    rng = random.Random("vocab")
    vocab = {f"tok{n}_{rng.getrandbits(32):08x}": n for n in range(60_000)}
    (model / "tokenizer.json").write_text(json.dumps({"model": {"vocab": vocab}}))
    (model / "config.json").write_text(json.dumps({"hidden_size": 2048, "layers": 24}))
    app = directory / "app"
    app.mkdir()
    (app / "main.py").write_text("import server\nserver.run()\n")
    (app / "server.py").write_text("def run():\n    print('serving')\n" * 50)


def _node_binary() -> Path | None:
    found = shutil.which("node")
    return Path(found).resolve() if found else None


def node_context(directory: Path) -> None:
    """node/ (bin/node and lib/node_modules/npm: the host's, or generated when there is no
    node), app/ with server.js, package.json and vendor/ (npm's dependencies, six times over
    under scoped names, as a lockfile's worth of packages)."""
    node = _node_binary()
    (directory / "node" / "bin").mkdir(parents=True)
    npm = node.parent.parent / "lib" / "node_modules" / "npm" if node else None
    if node is not None:
        shutil.copy2(node, directory / "node" / "bin" / "node")
    else:
        _pseudo_random(directory / "node" / "bin" / "node", 96 * MIB, "node")
    packages = npm if npm is not None and npm.is_dir() else _site_packages()
    _copy_tree(packages, directory / "node" / "lib" / "node_modules" / "npm")
    app = directory / "app"
    for n in range(6):
        _copy_tree(packages, app / "vendor" / f"@scope{n}")
    (app / "server.js").write_text("require('http').createServer().listen(8080);\n")
    (app / "package.json").write_text(json.dumps({"name": "app", "version": "1.0.0"}))


RECIPES = {
    "python-app": (PYTHON_DOCKERFILE, python_context),
    "node-app": (NODE_DOCKERFILE, node_context),
}


def _docker(*args: str, **kwargs: object) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["docker", *args], check=True, **kwargs)  # type: ignore[call-overload]


def _has_image(name: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", name], capture_output=True,
                          check=False).returncode == 0


def ensure_base() -> None:
    """busybox:local from the host's static busybox, as the engine tests make it."""
    if _has_image(BASE_TAG):
        return
    sys.path.insert(0, str(ENGINE_SH.parent.parent))
    from tests.engine.support import BUSYBOX_PATHS, busybox_rootfs_tar, is_static_executable

    busybox = next((Path(p) for p in BUSYBOX_PATHS if Path(p).exists()
                    and is_static_executable(Path(p))), None)
    if busybox is None:
        raise SystemExit("needs a static busybox (apt-get install busybox-static)")
    _docker("import", "-", BASE_TAG, input=busybox_rootfs_tar(busybox), capture_output=True)


def ensure(name: str, log: Callable[[str], None] = print) -> Built:
    """The image `name` in the engine (built, or loaded from its saved archive) and on disk."""
    tag = f"bench/{name}:{RECIPE_VERSION}"
    archive = BUILT / f"{name}-v{RECIPE_VERSION}.tar"
    if _has_image(tag) and archive.exists():
        return Built(tag, archive)
    BUILT.mkdir(parents=True, exist_ok=True)
    for old in BUILT.glob(f"{name}-v*.tar"):
        if old != archive:
            old.unlink()
    if archive.exists():
        log(f"  loading {archive.name} into the engine")
        with archive.open("rb") as data:
            _docker("load", "-q", stdin=data, stdout=subprocess.DEVNULL)
        if _has_image(tag):
            return Built(tag, archive)
    ensure_base()
    dockerfile, make_context = RECIPES[name]
    context = BUILT / f"{name}-context"
    shutil.rmtree(context, ignore_errors=True)
    context.mkdir(parents=True)
    try:
        log(f"  building {tag} (docker build, legacy builder)")
        make_context(context)
        (context / "Dockerfile").write_text(dockerfile)
        _docker("build", "-q", "-t", tag, str(context),
                env={**os.environ, "DOCKER_BUILDKIT": "0"}, stdout=subprocess.DEVNULL)
    finally:
        shutil.rmtree(context, ignore_errors=True)
    partial = archive.with_suffix(".partial")
    _docker("save", "-o", str(partial), tag)
    partial.rename(archive)
    return Built(tag, archive)


@contextmanager
def engine(log: Callable[[str], None] = print) -> Iterator[str | None]:
    """DOCKER_HOST of an engine that answers: the environment's, else one `.ci/engine.sh`
    starts (as root) and stops afterwards; None when neither can be had."""
    if shutil.which("docker") and subprocess.run(["docker", "version"], capture_output=True,
                                                 check=False).returncode == 0:
        yield os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        return
    if os.geteuid() != 0 or not shutil.which("dockerd"):
        log("  no Docker engine answers, and none can be started here (needs root and dockerd)")
        yield None
        return
    started = subprocess.run(["bash", str(ENGINE_SH), "start"], capture_output=True, text=True,
                             check=False)
    if started.returncode != 0:
        log("  could not start an engine: " + started.stderr.strip().splitlines()[-1])
        yield None
        return
    env = dict(line.removeprefix("export ").split("=", 1)
               for line in started.stdout.splitlines() if line.startswith("export "))
    saved = os.environ.get("DOCKER_HOST")
    os.environ["DOCKER_HOST"] = env["DOCKER_HOST"]
    try:
        yield env["DOCKER_HOST"]
    finally:
        if saved is None:
            os.environ.pop("DOCKER_HOST", None)
        else:
            os.environ["DOCKER_HOST"] = saved
        subprocess.run(["bash", str(ENGINE_SH), "stop", env["IMAGESCOPE_ENGINE_DIR"]],
                       capture_output=True, check=False)


_HASH_FLOOR = r"""
import hashlib, json, os, sys
archive, spans = sys.argv[1], json.loads(sys.argv[2])
fd = os.open(archive, os.O_RDONLY)
buffer = bytearray(8 << 20)
view = memoryview(buffer)
for offset, size in spans:
    hasher = hashlib.sha256()
    while size:
        count = os.preadv(fd, [view[:min(size, len(buffer))]], offset)
        hasher.update(view[:count])
        offset, size = offset + count, size - count
"""


def hash_floor(archive: Path) -> list[str]:
    """sha256 of every layer tar in `archive` with hashlib, one thread, 8 MiB reads."""
    return [sys.executable, "-c", _HASH_FLOOR, str(archive),
            json.dumps(layer_blobs(str(archive)))]


def rows(runs: int, work: Path, *, dive: Path, engine_too: bool) -> list[Row]:
    """The rows of the built images: archive cold against dive and the floors, warm against
    cold; through the engine against its export (curl on its socket) and `dive NAME`."""

    found: list[Row] = []
    with engine() as host:
        if host is None:
            print("  skipped: the built images need a Docker engine")
            return found
        for name in RECIPES:
            image = ensure(name)
            size = image.archive.stat().st_size
            print(f"\n[{name}] {image.name}: {len(layer_blobs(str(image.archive)))} layers, "
                  f"docker save {size / MIB:,.0f} MiB", flush=True)
            out, warm_out = work / f"{name}.json", work / f"{name}-warm.json"
            archive = str(image.archive)
            cold, warm, unverified, hashed, dived = interleaved([
                Case(f"imagescope {name} cold", inspect_cmd(archive, out),
                     lambda i, n=name: scope_env(work / f"{n}-cold-{i}"), timeout=900),
                Case(f"imagescope {name} warm", inspect_cmd(archive, warm_out),
                     lambda i, n=name: scope_env(work / f"{n}-cold-{i}"), timeout=900),
                Case(f"imagescope {name} --no-verify",
                     [*inspect_cmd(archive)[:2], "--no-verify", *inspect_cmd(archive)[2:]],
                     lambda i, n=name: scope_env(work / f"{n}-nv-{i}"), timeout=900),
                Case("floor: sha256 of every layer byte", hash_floor(image.archive)),
                Case("dive", [str(dive), "--source", "docker-archive", "--ci", archive],
                     timeout=900, ok_codes=(0, 1)),  # --ci: 1 = one of its rules failed
            ], runs)
            r = ratio(cold, dived)
            found.append(Row(f"{name} (docker build), archive: imagescope vs dive", cold, dived,
                             "wall ≤ 0.5 × dive, RSS ≤ dive",
                             r is not None and r <= 0.5 and cold.rss <= dived.rss, r,
                             cold.rss / dived.rss if dived.samples else None,
                             round_ratios(cold, dived).removeprefix("; ")))
            floor = max((f for f in (hashed, unverified) if f.ok), key=lambda f: f.wall,
                        default=hashed)
            r = ratio(cold, floor)
            found.append(Row(f"{name}: imagescope vs the larger floor", cold, floor,
                             "wall ≤ 1.2 × floor", r is not None and r <= 1.2, r,
                             cold.rss / floor.rss if floor.samples else None,
                             f"floors: hashlib {hashed.wall_text()}, scan alone (--no-verify) "
                             f"{unverified.wall_text()}{round_ratios(cold, floor)}"))
            same = out.exists() and warm_out.exists() and out.read_bytes() == warm_out.read_bytes()
            r = ratio(warm, cold)
            found.append(Row(f"{name}: warm cache vs cold", warm, cold, "wall ≤ 0.1 × cold",
                             r is not None and r <= 0.1 and same, r,
                             warm.rss / cold.rss if cold.samples else None,
                             "the same JSON, byte for byte" if same else "**output differs**"))
            if engine_too:
                found += _engine_rows(image, runs, work, dive, host)
    return found


def _engine_rows(image: Built, runs: int, work: Path, dive: Path, host: str) -> list[Row]:

    curl = shutil.which("curl")
    socket = host.removeprefix("unix://")
    if curl is None or not host.startswith("unix://"):
        print("  engine rows skipped: need curl and an engine on a unix socket")
        return []
    env = {**os.environ, "DOCKER_HOST": host}
    cold, export, dived = interleaved([
        Case(f"imagescope {image.name} (engine) cold",
             [str(IMAGESCOPE), "inspect", "--format", "json", "--no-progress", "--pull", "never",
              "-o", str(work / "engine.json"), image.name],
             lambda i: {**scope_env(work / f"engine-{image.name}-{i}"), "DOCKER_HOST": host},
             timeout=900),
        Case("engine export (curl GET /images/NAME/get > /dev/null)",
             [curl, "-sf", "--unix-socket", socket, "-o", os.devnull,
              f"http://localhost/images/{image.name}/get"], env, timeout=900),
        Case("dive NAME --ci", [str(dive), image.name, "--ci"], env, timeout=900,
             ok_codes=(0, 1)),
    ], runs)
    r_export, r_dive = ratio(cold, export), ratio(cold, dived)
    return [
        Row(f"{image.name.split('/')[1]} through the engine: imagescope vs the export", cold,
            export, "wall ≤ 1.1 × export", r_export is not None and r_export <= 1.1, r_export,
            None, round_ratios(cold, export).removeprefix("; ")),
        Row(f"{image.name.split('/')[1]} through the engine: imagescope vs dive", cold, dived,
            "wall ≤ dive", r_dive is not None and r_dive <= 1.0, r_dive,
            cold.rss / dived.rss if dived.samples else None,
            round_ratios(cold, dived).removeprefix("; ")),
    ]


if __name__ == "__main__":
    with engine() as host:
        if host is None:
            raise SystemExit(1)
        for image in sys.argv[1:] or list(RECIPES):
            built = ensure(image)
            print(built.name, built.archive, f"{built.archive.stat().st_size / MIB:.0f} MiB")
