"""The benchmark images: recipes, and building them once into a cache keyed by generator version.

- `big` (v1): 12 layers, ≈ 115,000 entries, ≈ 1.2 GiB of regular-file bytes: a Debian-like root
  filesystem with 350 busybox hard links, a build toolchain and apt caches, a pip install whose
  ≈ 11,000 `*.pyc` are then deleted one whiteout each (`find / -name '*.pyc' -delete`),
  identical rewrites (`chmod -R`, `chown -R`), overwrites (npm over copied node_modules), a
  256 MiB model deleted by an opaque whiteout, and a `.env` secret. Written as a legacy
  `docker save` archive and as OCI archives with gzip and with zstd layers.
- `big2` (v2): the same first seven layers byte for byte, then a changed app: for `diff`.
- `wide`: 10 layers, 1,000,000+ entries of small files (overwrites and whiteouts included).
- `huge` / `tiny`: one layer holding one 2 GiB file / one 1 KiB file, in all three formats.

`python -m bench.images [--quick] [--plan]` builds (or, with --plan, only counts) them.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.streamgen import (
    Dir,
    File,
    ImageMeta,
    LayerFiles,
    LayerStats,
    Link,
    Opaque,
    Record,
    Sym,
    Whiteout,
    walk_order,
    write_docker_legacy,
    write_layer,
    write_oci_archive,
)

GENERATOR_VERSION = 2  # bump on any change to a recipe or to streamgen's output
ROOT = Path(__file__).resolve().parent.parent / ".bench"
FORMATS = ("legacy", "gzip", "zstd")

# --------------------------------------------------------------------------- helpers

_SYLLABLES = ("ba", "co", "de", "fi", "gu", "ha", "ji", "ko", "lu", "ma", "ne", "po", "qu", "ri",
              "sa", "te", "vo", "wy", "xe", "zo", "al", "en", "ix", "or", "um", "ly", "th", "st")


def names(seed: str, count: int, *, parts: tuple[int, int] = (2, 4)) -> list[str]:
    """`count` distinct pronounceable names, deterministic for `seed`."""
    rng = random.Random(seed)
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < count:
        name = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(*parts)))
        if name not in seen:
            seen.add(name)
            out.append(name)
    return out


def size(rng: random.Random, median: int, sigma: float = 1.0, cap: int = 64 << 20) -> int:
    """A log-normal file size around `median` bytes."""
    return max(0, min(cap, int(rng.lognormvariate(0, sigma) * median)))


class Tree:
    """Emits each parent directory of a layer's entries once, before its first child."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def parents(self, path: str) -> Iterator[Dir]:
        parts = path.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            d = "/".join(parts[:depth])
            if d not in self.seen:
                self.seen.add(d)
                yield Dir(d)

    def file(self, path: str, nbytes: int = 0, key: str = "", **kw: Any) -> Iterator[Record]:
        yield from self.parents(path)
        yield File(path, nbytes, key or path, **kw)

    def data(self, path: str, data: bytes, **kw: Any) -> Iterator[Record]:
        yield from self.parents(path)
        yield File(path, data=data, **kw)

    def other(self, record: Record) -> Iterator[Record]:
        yield from self.parents(record.path)
        yield record


# --------------------------------------------------------------------------- big: layers

PACKAGES = names("debian-packages", 450)
LANGS = ("de", "es", "fr", "it", "ja", "pt_BR", "ru", "zh_CN")
ARCH_LIB = "usr/lib/x86_64-linux-gnu"
APPLETS = names("busybox-applets", 350, parts=(1, 3))
BUILD_PACKAGES = ("gcc-12", "g++-12", "cpp-12", "binutils", "make", "libc6-dev",
                  "python3.11-dev", "libssl-dev")
SITE = "usr/local/lib/python3.11/site-packages"
PY_PACKAGES = names("pypi-packages", 110)
NODE_PACKAGES = names("npm-packages", 900, parts=(2, 3))


def _dpkg_status(packages: Iterable[str]) -> bytes:
    paragraphs = [f"Package: {p}\nStatus: install ok installed\nPriority: optional\n"
                  f"Architecture: amd64\nVersion: 1.0-1\nDescription: {p}\n" for p in packages]
    return "\n".join(paragraphs).encode()


def _base_package(rng: random.Random, t: Tree, pkg: str) -> Iterator[Record]:
    listed: list[str] = []

    def emit(records: Iterator[Record]) -> Iterator[Record]:
        for record in records:
            if isinstance(record, File | Sym):
                listed.append("/" + record.path)
            yield record

    doc = f"usr/share/doc/{pkg}"
    yield from emit(t.file(f"{doc}/copyright", size(rng, 3000, 0.6)))
    yield from emit(t.file(f"{doc}/changelog.Debian.gz", size(rng, 6000, 0.8)))
    if rng.random() < 0.6:
        yield from emit(t.file(f"usr/share/man/man1/{pkg}.1.gz", size(rng, 3000, 0.7)))
    for n in range(2):
        lib = f"{ARCH_LIB}/lib{pkg}{n or ''}.so.{rng.randint(0, 9)}.{rng.randint(0, 20)}.0"
        yield from emit(t.file(lib, size(rng, 110_000, 1.1, 8 << 20), mode=0o644))
        yield from emit(t.other(Sym(lib.rsplit(".", 2)[0], lib.rsplit("/", 1)[1])))
    if rng.random() < 0.5:
        yield from emit(t.file(f"usr/bin/{pkg}", size(rng, 50_000, 1.0), mode=0o755))
    for n in range(30):
        sub = f"usr/share/{pkg}/{'data' if n < 10 else 'templates' if n < 20 else 'i18n'}"
        yield from emit(t.file(f"{sub}/{pkg}-{n:02d}.dat", size(rng, 1100, 1.0)))
    if rng.random() < 0.4:
        for lang in LANGS:
            yield from emit(t.file(f"usr/share/locale/{lang}/LC_MESSAGES/{pkg}.mo",
                                   size(rng, 18_000, 0.7)))
    yield from t.data(f"var/lib/dpkg/info/{pkg}.list", "\n".join(listed).encode() + b"\n")
    yield from t.file(f"var/lib/dpkg/info/{pkg}.md5sums", size(rng, 1500, 0.7))


def big_base() -> Iterator[Record]:
    """`ADD rootfs.tar.xz /`: a Debian-like root filesystem."""
    rng = random.Random("big-base")
    t = Tree()
    for d in ("etc", "home", "opt", "root", "tmp", "usr/bin", "usr/sbin", ARCH_LIB,
              "usr/share", "var/cache", "var/lib/dpkg/info", "var/log"):
        yield from t.other(Dir(d, 0o700 if d == "root" else 0o1777 if d == "tmp" else 0o755))
    for link, target in (("bin", "usr/bin"), ("sbin", "usr/sbin"), ("lib", "usr/lib"),
                         ("lib64", "usr/lib64")):
        yield Sym(link, target)
    yield from t.data("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"
                                    b"app:x:1000:1000::/app:/bin/sh\n")
    yield from t.data("etc/os-release", b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n')
    yield from t.file("etc/ld.so.cache", 60_000, key="ld.so.cache-1")
    yield from t.file("usr/bin/busybox", 1_100_000, mode=0o755)
    for applet in APPLETS:
        yield Link(f"usr/bin/{applet}", "usr/bin/busybox")
    for pkg in PACKAGES:
        yield from _base_package(rng, t, pkg)
    yield from t.data("var/lib/dpkg/status", _dpkg_status(PACKAGES))


GCC = "usr/lib/gcc/x86_64-linux-gnu/12"


def big_toolchain() -> Iterator[Record]:
    """`RUN apt-get update && apt-get install -y build-essential python3-dev`."""
    rng = random.Random("big-toolchain")
    t = Tree()
    lists = "var/lib/apt/lists"
    for n in range(12):
        yield from t.file(f"{lists}/deb.debian.org_debian_dists_bookworm_{n:02d}_Packages",
                          size(rng, 3_000_000, 0.6))
    yield from t.data(f"{lists}/lock", b"")
    yield from t.other(Dir(f"{lists}/partial", 0o700))
    debs = names("debs", 150)
    for deb in debs:
        yield from t.file(f"var/cache/apt/archives/{deb}_1.0-1_amd64.deb", size(rng, 200_000))
    yield from t.file("var/cache/apt/pkgcache.bin", 14_000_000)
    yield from t.file("var/cache/apt/srcpkgcache.bin", 14_000_000)
    files: dict[str, list[str]] = {p: [] for p in BUILD_PACKAGES}
    for prog, nbytes in (("cc1", 30_000_000), ("cc1plus", 33_000_000), ("lto1", 28_000_000),
                         ("collect2", 200_000), ("lto-wrapper", 900_000)):
        yield from t.file(f"{GCC}/{prog}", nbytes, mode=0o755)
        files["gcc-12"].append(f"/{GCC}/{prog}")
    for n in range(30):
        yield from t.file(f"{GCC}/lib{names('static', 30)[n]}.a", size(rng, 500_000))
    for prog in ("gcc-12", "g++-12", "cpp-12"):
        yield from t.file(f"usr/bin/{prog}", 1_000_000, mode=0o755)
        yield Link(f"usr/bin/x86_64-linux-gnu-{prog}", f"usr/bin/{prog}")
        yield Sym(f"usr/bin/{prog.split('-')[0]}", prog)
        files[prog].append(f"/usr/bin/{prog}")
    for prog in ("as", "ld.bfd", "ar", "objdump", "readelf", "strip", "nm"):
        yield from t.file(f"usr/bin/x86_64-linux-gnu-{prog}", size(rng, 600_000, 0.5), mode=0o755)
        files["binutils"].append(f"/usr/bin/x86_64-linux-gnu-{prog}")
    yield from t.file("usr/bin/make", 250_000, mode=0o755)
    files["make"].append("/usr/bin/make")
    dirs = names("include-dirs", 300)
    for n in range(10_500):
        path = f"usr/include/{dirs[n % 300]}/{dirs[(n * 7) % 300]}_{n:05d}.h"
        yield from t.file(path, size(rng, 4000, 0.9))
        files["libc6-dev" if n % 3 else "libssl-dev"].append("/" + path)
    for pkg, listed in files.items():
        yield from t.data(f"var/lib/dpkg/info/{pkg}.list", "\n".join(listed).encode() + b"\n")
    yield from t.data("var/lib/dpkg/status", _dpkg_status([*PACKAGES, *BUILD_PACKAGES]))
    yield from t.file("var/log/apt/term.log", 400_000)
    yield from t.file("etc/ld.so.cache", 61_000, key="ld.so.cache-2")


def _py_modules(pkg: str) -> list[str]:
    rng = random.Random("py-" + pkg)
    count = min(1500, max(8, int(rng.lognormvariate(0, 1.0) * 55)))
    subs = names("sub-" + pkg, 1 + count // 15)
    return [f"{SITE}/{pkg}/{subs[i // 15]}/{name}.py"
            for i, name in enumerate(names("mod-" + pkg, count))]


def _pyc(path: str) -> str:
    head, _, name = path.rpartition("/")
    return f"{head}/__pycache__/{name[:-3]}.cpython-311.pyc"


def big_pip() -> Iterator[Record]:
    """`RUN pip install -r requirements.txt` (with the pip cache, bytecode compiled)."""
    rng = random.Random("big-pip")
    t = Tree()
    for pkg in PY_PACKAGES:
        info = f"{SITE}/{pkg}-1.0.dist-info"
        for name, median in (("METADATA", 4000), ("RECORD", 9000), ("WHEEL", 100),
                             ("top_level.txt", 20), ("INSTALLER", 4)):
            yield from t.file(f"{info}/{name}", size(rng, median, 0.5))
        for path in _py_modules(pkg):
            yield from t.file(path, size(rng, 4500, 1.0))
            yield from t.file(_pyc(path), size(rng, 4000, 0.9))
        if rng.random() < 0.4:
            for n in range(rng.randint(1, 3)):
                yield from t.file(f"{SITE}/{pkg}/_speedups{n}.cpython-311-x86_64-linux-gnu.so",
                                  size(rng, 700_000, 0.9))
    for n in range(400):
        yield from t.file(f"root/.cache/pip/http-v2/{n % 16:x}/{n:04d}/{n:08x}.body",
                          size(rng, 70_000, 1.0))


def big_pyc_delete() -> Iterator[Record]:
    """`RUN find / -name '*.pyc' -delete`: one whiteout per file, parents listed as changed."""
    t = Tree()
    for pkg in PY_PACKAGES:
        for path in _py_modules(pkg):
            yield from t.other(Whiteout(_pyc(path)))


def big_chmod() -> Iterator[Record]:
    """`RUN chmod -R g+w site-packages/<first 15> && sed -i … <others>`: identical rewrites
    and real modifications."""
    rng = random.Random("big-chmod")
    t = Tree()
    sizes = {r.path: r.size for r in big_pip() if isinstance(r, File)}  # as pip wrote them
    for n, pkg in enumerate(PY_PACKAGES):
        modules = _py_modules(pkg)
        if n < 15:
            for path in modules:
                yield from t.file(path, sizes[path], key=path, mode=0o664)
        elif n % 4 == 0:
            for path in modules[: max(1, len(modules) // 5)]:
                yield from t.file(path, sizes[path] + rng.randint(-50, 200), key=path + "@sed")


def big_model() -> Iterator[Record]:
    """`COPY model.bin /opt/model/`."""
    t = Tree()
    yield from t.file("opt/model/model.bin", 256 << 20)
    yield from t.file("opt/model/config.json", 2_000)


def big_model_swap() -> Iterator[Record]:
    """`RUN rm -rf /opt/model && mkdir /opt/model && curl -o /opt/model/model-q4.bin …`."""
    t = Tree()
    yield from t.other(Dir("opt/model"))
    yield Opaque("opt/model")
    yield from t.file("opt/model/model-q4.bin", 64 << 20)
    yield from t.file("opt/model/config.json", 2_100)


def _app(version: int) -> Iterator[Record]:
    """`COPY . /app` without a .dockerignore (v2: 10 % of sources changed, 100 added)."""
    rng = random.Random("big-app")
    t = Tree()
    yield from t.data("app/package.json", b'{"name": "app", "version": "1.%d.0"}\n' % version)
    yield from t.file("app/package-lock.json", 300_000, key=f"lock-v{version}")
    yield from t.data("app/Dockerfile", b"FROM debian:bookworm\nCOPY . /app\n")
    yield from t.data("app/.env", b"API_TOKEN=sk-live-0123456789abcdef0123456789abcdef\n")
    yield from t.file("app/.git/HEAD", 23)
    yield from t.file(f"app/.git/objects/pack/pack-{version:040d}.pack", 12_000_000)
    for n in range(1500):
        yield from t.file(f"app/.git/objects/{n % 256:02x}/{n:038x}", size(rng, 1800, 0.8))
    mods = names("app-mods", 60)
    for n in range(2500 + (100 if version > 1 else 0)):
        path = f"app/src/{mods[n % 60]}/{mods[(n * 13) % 60]}_{n:04d}.ts"
        changed = version > 1 and n % 10 == 0
        yield from t.file(path, size(rng, 2500, 0.9), key=path + ("@v2" if changed else ""))
    for n in range(400):
        yield from t.file(f"app/tests/{mods[n % 60]}/test_{n:04d}.ts", size(rng, 2000, 0.8))
    for path, nbytes in _node_modules(3000):
        yield from t.file(path, nbytes, key=path + "@host")


def _node_modules(count: int, version: int = 1) -> Iterator[tuple[str, int]]:
    rng = random.Random(f"node-modules-{count}")
    for n in range(count):
        pkg = NODE_PACKAGES[n % len(NODE_PACKAGES)]
        sub = ("lib", "dist", "src", "types")[(n // len(NODE_PACKAGES)) % 4]
        yield (f"app/node_modules/{pkg}/{sub}/{NODE_PACKAGES[(n * 31) % 900]}_{n:05d}.js",
               size(rng, 2200, 1.0))


def big_app() -> Iterator[Record]:
    return _app(1)


def big2_app() -> Iterator[Record]:
    return _app(2)


def _npm(version: int) -> Iterator[Record]:
    """`RUN npm ci && npm run build` (node_modules replaces the copied one; npm cache kept)."""
    rng = random.Random("big-npm")
    t = Tree()
    for n, (path, nbytes) in enumerate(_node_modules(28_000)):
        changed = version > 1 and n % 20 == 0
        yield from t.file(path, nbytes, key=path + ("@v2" if changed else ""))
    for n in range(200 if version > 1 else 0):
        yield from t.file(f"app/node_modules/newdep/lib/m{n:03d}.js", size(rng, 2000))
    for n in range(2500):
        yield from t.file(f"root/.npm/_cacache/content-v2/sha512/{n % 256:02x}/{n:030x}",
                          size(rng, 9000, 1.0), key=f"npm-cache-{version}-{n}")
    for n in range(300):
        yield from t.file(f"app/dist/chunk-{n:03d}.js", size(rng, 9000, 0.8),
                          key=f"dist-{version}-{n}")


def big_npm() -> Iterator[Record]:
    return _npm(1)


def big2_npm() -> Iterator[Record]:
    return _npm(2)


def big_purge() -> Iterator[Record]:
    """`RUN apt-get purge -y build-essential && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin`
    (the downloaded .deb files stay)."""
    t = Tree()
    for path in (GCC.rsplit("/", 2)[0], "usr/include"):
        yield from t.other(Whiteout(path))
    for prog in ("gcc-12", "g++-12", "cpp-12"):
        for path in (prog, f"x86_64-linux-gnu-{prog}", prog.split("-")[0]):
            yield from t.other(Whiteout(f"usr/bin/{path}"))
    for record in big_toolchain():
        if isinstance(record, File) and record.path.startswith("var/lib/apt/lists/"):
            yield from t.other(Whiteout(record.path))
    for name in ("pkgcache.bin", "srcpkgcache.bin"):
        yield from t.other(Whiteout(f"var/cache/apt/{name}"))
    for pkg in BUILD_PACKAGES:
        yield from t.other(Whiteout(f"var/lib/dpkg/info/{pkg}.list"))
    yield from t.data("var/lib/dpkg/status", _dpkg_status(PACKAGES))
    yield from t.file("var/log/apt/term.log", 450_000)


def _chown(version: int) -> Iterator[Record]:
    """`RUN chown -R app:app /app/src`: every source rewritten unchanged, owned by 1000."""
    t = Tree()
    for record in _app(version):
        if isinstance(record, File) and record.path.startswith("app/src/"):
            yield from t.file(record.path, record.size, key=record.key, uid=1000)


def big_chown() -> Iterator[Record]:
    return _chown(1)


def big2_chown() -> Iterator[Record]:
    return _chown(2)


def _entrypoint(version: int) -> Iterator[Record]:
    t = Tree()
    yield from t.data("usr/local/bin/docker-entrypoint.sh",
                      b"#!/bin/sh\nexec node /app/dist/main.js \"$@\"\n", mode=0o755)
    yield from t.data("app/config/production.json", b'{"version": %d}\n' % version)


def big_entrypoint() -> Iterator[Record]:
    return _entrypoint(1)


def big2_entrypoint() -> Iterator[Record]:
    return _entrypoint(2)


def _run(command: str) -> tuple[str, bool]:
    return f"RUN /bin/sh -c {command} # buildkit", False


_BIG_STEPS = [
    (("/bin/sh -c #(nop) ADD "
      "file:3d5a1c7e0f9b2a4c6d8e0f1a3b5c7d9e1f3a5b7c9d1e3f5a7b9c1d3e5f7a9b1c in / "), False),
    ('/bin/sh -c #(nop)  CMD ["bash"]', True),
    _run("apt-get update && apt-get install -y build-essential python3-dev libssl-dev"),
    ("WORKDIR /app", True),
    _run("pip install -r requirements.txt"),
    _run("find / -name '*.pyc' -delete"),
    _run(f"chmod -R g+w {SITE} && sed -i 's/DEBUG = True/DEBUG = False/' {SITE}/*/*.py"),
    ("COPY model.bin /opt/model/ # buildkit", False),
    _run("rm -rf /opt/model && mkdir /opt/model && curl -sL https://models.example/q4 "
         "-o /opt/model/model-q4.bin"),
    ("COPY . /app # buildkit", False),
    _run("npm ci && npm run build"),
    _run("apt-get purge -y build-essential && apt-get autoremove -y && rm -rf "
         "/var/lib/apt/lists/* /var/cache/apt/*.bin"),
    _run("chown -R app:app /app/src"),
    ("COPY docker-entrypoint.sh /usr/local/bin/ # buildkit", False),
    ("ENV NODE_ENV=production", True),
    ('CMD ["docker-entrypoint.sh"]', True),
]

# --------------------------------------------------------------------------- wide (10⁶ entries)

WIDE_DIRS = 1250
WIDE_FILES = 80


def _wide_path(layer: int, group: int, n: int) -> str:
    return f"opt/dataset/layer-{layer}/group-{group:04d}/sample-{n:03d}-{(group * 131 + n) % 997:03x}.json"


def _wide_layer(layer: int) -> Callable[[], Iterator[Record]]:
    def recipe() -> Iterator[Record]:
        rng = random.Random(f"wide-{layer}")
        t = Tree()
        if layer >= 8:  # half the groups of a lower layer overwritten (8) or deleted (9)
            lower = layer - 8
            for group in range(WIDE_DIRS // 2):
                for n in range(WIDE_FILES):
                    path = _wide_path(lower, group, n)
                    if layer == 8:
                        yield from t.file(path, rng.randrange(0, 600), key=path + "@v2")
                    else:
                        yield from t.other(Whiteout(path))
        groups = WIDE_DIRS // 2 if layer >= 8 else WIDE_DIRS
        for group in range(groups):
            for n in range(WIDE_FILES):
                yield from t.file(_wide_path(layer, group, n), rng.randrange(0, 600))
    recipe.__name__ = f"wide_{layer}"
    return recipe


# --------------------------------------------------------------------------- huge / tiny


def _single(nbytes: int) -> Callable[[], Iterator[Record]]:
    def recipe() -> Iterator[Record]:
        t = Tree()
        yield from t.file("data/blob.bin", nbytes, key="single-file")
        yield from t.file("data/README", 100)
    return recipe


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class LayerRecipe:
    key: str
    recipe: Callable[[], Iterable[Record]]
    compressions: tuple[str, ...]
    gzip_level: int = 6
    cost: int = 1  # rough relative generation time, to schedule the longest first


@dataclass(frozen=True)
class ImageRecipe:
    name: str
    layers: tuple[LayerRecipe, ...]
    meta: ImageMeta
    formats: tuple[str, ...]
    variant: str = ""  # part of the archive names when a --quick image differs

    @property
    def archive_name(self) -> str:
        return f"{self.name}-{self.variant}" if self.variant else self.name


def _big_layers(v2: bool) -> tuple[LayerRecipe, ...]:
    gz = ("gzip", "zstd") if not v2 else ()
    shared = (
        LayerRecipe("big-00-base", big_base, ("gzip", "zstd"), cost=300),
        LayerRecipe("big-01-toolchain", big_toolchain, ("gzip", "zstd"), cost=250),
        LayerRecipe("big-02-pip", big_pip, ("gzip", "zstd"), cost=230),
        LayerRecipe("big-03-pyc-delete", big_pyc_delete, ("gzip", "zstd"), cost=5),
        LayerRecipe("big-04-chmod", big_chmod, ("gzip", "zstd"), cost=20),
        LayerRecipe("big-05-model", big_model, ("gzip", "zstd"), cost=256),
        LayerRecipe("big-06-model-swap", big_model_swap, ("gzip", "zstd"), cost=64),
    )
    if not v2:
        top = (
            LayerRecipe("big-07-app", big_app, gz, cost=40),
            LayerRecipe("big-08-npm", big_npm, gz, cost=145),
            LayerRecipe("big-09-purge", big_purge, gz, cost=2),
            LayerRecipe("big-10-chown", big_chown, gz, cost=8),
            LayerRecipe("big-11-entrypoint", big_entrypoint, gz, cost=1),
        )
    else:
        top = (
            LayerRecipe("big2-07-app", big2_app, gz, cost=40),
            LayerRecipe("big2-08-npm", big2_npm, gz, cost=145),
            LayerRecipe("big-09-purge", big_purge, ("gzip", "zstd"), cost=2),
            LayerRecipe("big2-10-chown", big2_chown, gz, cost=8),
            LayerRecipe("big2-11-entrypoint", big2_entrypoint, gz, cost=1),
        )
    return shared + top


def recipes(quick: bool = False) -> dict[str, ImageRecipe]:
    """Every benchmark image; `quick` makes `huge` 512 MiB instead of 2 GiB."""
    env = ["PATH=/usr/local/bin:/usr/bin:/bin", "NODE_ENV=production"]
    huge_bytes = (512 << 20) if quick else (2 << 30)
    single_steps = [("COPY data /data # buildkit", False)]
    return {
        "big": ImageRecipe("big", _big_layers(False),
                           ImageMeta("bench/big:1", _BIG_STEPS, env=env,
                                     cmd=["docker-entrypoint.sh"]), FORMATS),
        "big2": ImageRecipe("big2", _big_layers(True),
                            ImageMeta("bench/big:2", _BIG_STEPS, env=env,
                                      cmd=["docker-entrypoint.sh"]), ("legacy",)),
        "wide": ImageRecipe("wide", tuple(LayerRecipe(f"wide-{i}", _wide_layer(i), (), cost=60)
                                          for i in range(10)),
                            ImageMeta("bench/wide:1", [(f"COPY layer-{i} /opt/dataset/ # buildkit",
                                                        False) for i in range(10)], user="1000"),
                            ("legacy",)),
        "huge": ImageRecipe("huge", (LayerRecipe(f"huge-{huge_bytes >> 20}m",
                                                 _single(huge_bytes), ("gzip", "zstd"),
                                                 gzip_level=1, cost=huge_bytes >> 21),),
                            ImageMeta("bench/huge:1", single_steps, user="1000"), FORMATS,
                            variant=f"{huge_bytes >> 20}m"),
        "tiny": ImageRecipe("tiny", (LayerRecipe("tiny-1k", _single(1024), ("gzip", "zstd"),
                                                 gzip_level=1),),
                            ImageMeta("bench/tiny:1", single_steps, user="1000"), FORMATS),
    }


# --------------------------------------------------------------------------- building

def data_dir() -> Path:
    return ROOT / "data" / f"g{GENERATOR_VERSION}"


def archive_path(image: str, fmt: str) -> Path:
    return data_dir() / "images" / f"{image}-{fmt}.tar"


def _layer_stamp(key: str, compressions: tuple[str, ...]) -> LayerFiles | None:
    stamp = data_dir() / "layers" / f"{key}.json"
    if not stamp.exists():
        return None
    files = LayerFiles.from_json(json.loads(stamp.read_text()))
    if any(c not in files.blobs or not Path(files.blobs[c].path).exists()
           for c in ("plain", *compressions)):
        return None
    return files


def build(names_wanted: Iterable[str], *, quick: bool = False, jobs: int = 2,
          log: Callable[[str], None] = print) -> dict[str, dict[str, Any]]:
    """Make sure the images are on disk; returns per image its archives, layers and stats.

    Everything lives under `.bench/data/g<GENERATOR_VERSION>/`; what exists is reused, older
    generator versions are deleted.
    """
    all_recipes = recipes(quick)
    wanted = [all_recipes[n] for n in names_wanted]
    root = data_dir()
    (root / "layers").mkdir(parents=True, exist_ok=True)
    (root / "images").mkdir(parents=True, exist_ok=True)
    for old in (ROOT / "data").glob("g*"):
        if old != root:
            shutil.rmtree(old, ignore_errors=True)
    needed: dict[str, LayerRecipe] = {}
    for image in wanted:
        for layer in image.layers:
            if layer.key in needed:  # shared by two images: build with every compression
                merged = tuple(sorted(set(needed[layer.key].compressions) |
                                      set(layer.compressions)))
                needed[layer.key] = LayerRecipe(layer.key, layer.recipe, merged,
                                                layer.gzip_level, layer.cost)
            else:
                needed[layer.key] = layer
    done: dict[str, LayerFiles] = {}
    todo = []
    for key, layer in needed.items():
        found = _layer_stamp(key, layer.compressions)
        if found is not None:
            done[key] = found
        else:
            todo.append(layer)
    if todo:
        todo.sort(key=lambda layer: -layer.cost)
        log(f"generating {len(todo)} layer(s) with {jobs} process(es) into {root} …")
        started = time.perf_counter()
        # a recipe may be needed with more compressions than its own entry says
        items = [("quick" if quick else "full", layer.key) for layer in todo]
        extra = {layer.key: layer.compressions for layer in todo}
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            for key, doc, seconds in pool.map(_build_layer_with, items,
                                              [extra[k] for _, k in items]):
                done[key] = LayerFiles.from_json(doc)
                log(f"  {key}: {doc['stats']['entries']} entries, "
                    f"{doc['stats']['file_bytes'] / 2**20:.0f} MiB in {seconds:.1f} s")
        log(f"layers generated in {time.perf_counter() - started:.0f} s")
    out: dict[str, dict[str, Any]] = {}
    for image in wanted:
        layers = [done[recipe.key] for recipe in image.layers]
        stats = LayerStats()
        for files in layers:
            stats.add(files.stats)
        archives = {}
        for fmt in image.formats:
            path = archive_path(image.archive_name, fmt)
            stamp = path.with_suffix(".json")
            expect = [files.diff_id for files in layers]
            if not (path.exists() and stamp.exists()
                    and json.loads(stamp.read_text()).get("diff_ids") == expect):
                if fmt == "legacy":
                    write_docker_legacy(path, image.meta, layers)
                else:
                    write_oci_archive(path, image.meta, layers, fmt)
                stamp.write_text(json.dumps({"diff_ids": expect}))
                log(f"  wrote {path.name} ({path.stat().st_size / 2**20:.0f} MiB)")
            archives[fmt] = str(path)
        out[image.name] = {
            "archives": archives,
            "layers": [layer.to_json() for layer in layers],
            "stats": {name: getattr(stats, name)
                      for name in LayerStats.__slots__},
        }
    return out


def _build_layer_with(item: tuple[str, str], compressions: tuple[str, ...]
                      ) -> tuple[str, dict[str, Any], float]:
    quick, key = item
    recipe = next(layer for image in recipes(quick == "quick").values() for layer in image.layers
                  if layer.key == key)
    started = time.perf_counter()
    base = data_dir() / "layers" / key
    files = write_layer(walk_order(recipe.recipe()), base, compressions,
                        gzip_level=recipe.gzip_level)
    doc = files.to_json()
    base.with_name(key + ".json").write_text(json.dumps(doc, indent=1))
    return key, doc, time.perf_counter() - started


def plan(name: str, quick: bool = False) -> LayerStats:
    """Count what an image's recipes produce, writing nothing."""
    total = LayerStats()
    for layer in recipes(quick)[name].layers:
        stats = LayerStats()
        for record in walk_order(layer.recipe()):
            stats.entries += 1
            if isinstance(record, File):
                stats.files += 1
                stats.file_bytes += len(record.data) if record.data is not None else record.size
            elif isinstance(record, Dir):
                stats.dirs += 1
            elif isinstance(record, Link):
                stats.hardlinks += 1
            elif isinstance(record, Sym):
                stats.symlinks += 1
            elif isinstance(record, Whiteout):
                stats.whiteouts += 1
            else:
                stats.opaques += 1
        print(f"  {layer.key:22} {stats.entries:9,} entries {stats.file_bytes / 2**20:9.1f} MiB "
              f"wh={stats.whiteouts} opq={stats.opaques} links={stats.hardlinks}")
        total.add(stats)
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.images", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("images", nargs="*", default=["big", "big2", "wide", "huge", "tiny"])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--plan", action="store_true", help="only count entries and bytes")
    args = parser.parse_args(argv)
    if args.plan:
        for name in args.images:
            print(name)
            total = plan(name, args.quick)
            print(f"  total: {total}")
        return 0
    result = build(args.images, quick=args.quick)
    json.dump({k: v["stats"] for k, v in result.items()}, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
