"""Findings and recommendations of `imagescope inspect` on images a real engine built.

One busybox-based image holds every kind of finding at its real path, written by four steps:

  setup   RUN   caches, toolchain files, a dpkg database, docs (`head -c N /dev/zero`, `printf`)
  copy    COPY  `. /app/`: a build context holding the app, .git/, __pycache__, tests/, a log,
                .DS_Store, a swap file, node_modules/, the Dockerfile, a .env, a private key,
                a public certificate and an .npmrc with an auth token
  npmrc   COPY  that .npmrc to /root/.npmrc
  clean   RUN   removes the private key and a build file, `chmod -R` over copied files

Every byte is written by this module, so every finding's bytes, paths and layers are worked out
here from what the Dockerfile writes; the legacy builder puts only what a step wrote into its
layer (see test_engine_inspect). Tiny images with `USER 1000` / `USER 0` give the root-user
negative and positive without a new layer, one with five tiny RUN layers the layer-count finding,
and a rebuild with the recommended .dockerignore checks that its lines keep every leak out.
No secret string written here may appear in any output (JSON, table, Markdown).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from imagescope.errors import ExitCode
from tests.engine.support import BaseImage, Cli, SessionImages, inspect_json

pytestmark = pytest.mark.engine

# Fake secrets: none of these strings may appear in any output.
DOTENV_TOKEN = "isc_fake_dotenv_token_3f9c1e0b7a"
NPM_TOKEN = "isc_fake_npm_token_8b27d4c61e"
KEY_MATERIAL = "b3BlbnNzaC1rZXktdjEAAAAAimagescopeFakeKeyMaterialNotARealKey0000"
SECRET_STRINGS = (DOTENV_TOKEN, NPM_TOKEN, KEY_MATERIAL)

PRIVATE_KEY = (f"-----BEGIN OPENSSH PRIVATE KEY-----\n{KEY_MATERIAL}\n"
               "-----END OPENSSH PRIVATE KEY-----\n").encode()
# A public certificate: a .pem, but no secret.
PUBLIC_CERT = (b"-----BEGIN CERTIFICATE-----\n"
               b"MIIBszCCAVmgAwIBAgIUimagescopeFakePublicCertificate0000\n"
               b"-----END CERTIFICATE-----\n")

# --- step `setup` (RUN): zero-filled files, path -> bytes ------------------------------------
APT_LISTS = "/var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.lz4"
APT_DEB = "/var/cache/apt/archives/make_4.3-4.1_amd64.deb"
APT_PKGCACHE = "/var/cache/apt/pkgcache.bin"
APT_SRCPKGCACHE = "/var/cache/apt/srcpkgcache.bin"
PIP_ROOT = "/root/.cache/pip/http-v2/a/b/c/0123abcd.body"
PIP_HOME = "/home/app/.cache/pip/wheels/ab/cd/pkg-1.0-py3-none-any.whl"
NPM_CONTENT = "/root/.npm/_cacache/content-v2/sha512/ab/cd/ef0123"
NPM_INDEX = "/root/.npm/_cacache/index-v5/12/34/56789a"
NPM_LOG = "/root/.npm/_logs/2024-01-01T00_00_00_000Z-debug-0.log"  # not the cache
GCC = "/usr/bin/gcc-12"
CC1 = "/usr/lib/gcc/x86_64-linux-gnu/12/cc1"
MAKE = "/usr/bin/make"
STATIC_LIB = "/usr/lib/x86_64-linux-gnu/libc_nonshared.a"
SHARED_LIB = "/usr/lib/x86_64-linux-gnu/libz.so.1.2.13"  # owned by zlib1g: not a build package
GCC_COPYRIGHT = "/usr/share/doc/gcc-12/copyright"  # owned by gcc-12: docs and toolchain both
BUSYBOX_README = "/usr/share/doc/busybox/README"
MAKE_MAN = "/usr/share/man/man1/make.1.gz"  # owned by make: docs and toolchain both
MAKE_INFO = "/usr/share/info/make.info.gz"
MAKE_MO = "/usr/share/locale/de/LC_MESSAGES/make.mo"
BUILT_NODE_MODULES = "/srv/node_modules/built/index.js"  # made by RUN: no context leak
BUILD_LOG = "/var/log/build.log"  # made by RUN: no context leak
BUILD_OBJECT = "/tmp/build.o"  # removed by step `clean`

ZERO_FILES = {
    APT_LISTS: 3101, APT_DEB: 2102, APT_PKGCACHE: 1203, APT_SRCPKGCACHE: 1104,
    PIP_ROOT: 1305, PIP_HOME: 1406, NPM_CONTENT: 1507, NPM_INDEX: 208, NPM_LOG: 309,
    GCC: 4110, CC1: 5111, MAKE: 2212, STATIC_LIB: 1313, SHARED_LIB: 1014,
    GCC_COPYRIGHT: 615, BUSYBOX_README: 516, MAKE_MAN: 417, MAKE_INFO: 318, MAKE_MO: 219,
    BUILT_NODE_MODULES: 120, BUILD_LOG: 121, BUILD_OBJECT: 6022,
}

# --- step `setup` (RUN): text files, path -> lines (`printf '%s\n' LINE...`; no single quotes) ---
STDIO_H = "/usr/include/stdio.h"
DPKG_STATUS = "/var/lib/dpkg/status"
GCC_LIST = "/var/lib/dpkg/info/gcc-12.list"
MAKE_LIST = "/var/lib/dpkg/info/make.list"
ZLIB_LIST = "/var/lib/dpkg/info/zlib1g:amd64.list"
HOME_NPMRC = "/home/app/.npmrc"  # no token: no secret

TEXT_FILES: dict[str, list[str]] = {
    STDIO_H: ["#ifndef _STDIO_H", "#define _STDIO_H 1", "int printf(const char *, ...);",
              "#endif"],
    DPKG_STATUS: [
        "Package: gcc-12", "Status: install ok installed", "Priority: optional",
        "Section: devel", "Installed-Size: 67", "Architecture: amd64", "Version: 12.2.0-14",
        "Description: GNU C compiler", "",
        "Package: make", "Status: install ok installed", "Priority: optional",
        "Section: devel", "Installed-Size: 1592", "Architecture: amd64", "Version: 4.3-4.1",
        "Description: utility for directing compilation", "",
        "Package: zlib1g", "Status: install ok installed", "Priority: optional",
        "Section: libs", "Installed-Size: 168", "Architecture: amd64", "Multi-Arch: same",
        "Version: 1:1.2.13.dfsg-1", "Description: compression library - runtime", "",
        # Removed, configuration kept: not installed, owns nothing here.
        "Package: libc6-dev", "Status: deinstall ok config-files", "Priority: optional",
        "Section: libdevel", "Installed-Size: 12", "Architecture: amd64", "Multi-Arch: same",
        "Version: 2.36-9", "Description: GNU C Library: Development Libraries and Header Files",
    ],
    GCC_LIST: ["/.", "/usr", "/usr/bin", GCC, "/usr/lib", "/usr/lib/gcc",
               "/usr/lib/gcc/x86_64-linux-gnu", "/usr/lib/gcc/x86_64-linux-gnu/12", CC1,
               "/usr/share", "/usr/share/doc", "/usr/share/doc/gcc-12", GCC_COPYRIGHT,
               "/usr/share/man/man1/gcc-12.1.gz"],  # the man page is not in the image
    MAKE_LIST: ["/.", "/usr", "/usr/bin", MAKE, "/usr/share", "/usr/share/man",
                "/usr/share/man/man1", MAKE_MAN],
    ZLIB_LIST: ["/.", "/usr", "/usr/lib", "/usr/lib/x86_64-linux-gnu", SHARED_LIB],
    HOME_NPMRC: ["registry=https://registry.npmjs.org/"],
}


def text_bytes(path: str) -> int:
    return sum(len(line.encode()) + 1 for line in TEXT_FILES[path])


def setup_command() -> str:
    every = [*ZERO_FILES, *TEXT_FILES]
    directories = sorted({path.rsplit("/", 1)[0] for path in every})
    parts = [f"mkdir -p {' '.join(directories)}"]
    parts += [f"head -c {size} /dev/zero > {path}" for path, size in ZERO_FILES.items()]
    for path, lines in TEXT_FILES.items():
        assert not any("'" in line for line in lines)
        parts.append("printf '%s\\n' " + " ".join(f"'{line}'" for line in lines) + f" > {path}")
    return " && ".join(parts)


# --- step `copy` (COPY . /app/): the build context, context path -> bytes ---------------------
NPMRC = f"//registry.npmjs.org/:_authToken={NPM_TOKEN}\n".encode()
CONTEXT: dict[str, bytes] = {
    "app.py": b"print('hello')\n",
    "package.json": b'{"name": "app", "version": "1.0.0"}\n',  # node_modules/ is the app's
    "bin/run.sh": b"#!/bin/sh\nexec python /app/app.py\n",  # chmod -R'd by step `clean`
    ".git/HEAD": b"ref: refs/heads/main\n",
    ".git/config": b"[core]\n\trepositoryformatversion = 0\n\tbare = false\n",
    ".git/objects/ab/cdef0123456789": bytes(701),
    "__pycache__/app.cpython-311.pyc": bytes(333),
    "tests/test_app.py": b"def test_app():\n    assert True\n",
    "app.log": b"started\n" * 11,
    ".DS_Store": bytes(402),
    ".app.py.swp": bytes(250),
    "node_modules/leftpad/index.js": b"module.exports = (s) => s;\n",
    ".env": f"API_TOKEN={DOTENV_TOKEN}\nDEBUG=0\n".encode(),
    "id_rsa": PRIVATE_KEY,  # removed by step `clean`: still in the `copy` layer
    "cert.pem": PUBLIC_CERT,
    ".npmrc": NPMRC,  # also copied to /root/.npmrc by step `npmrc`
}


def copied(context_path: str) -> str:
    """Where `COPY . /app/` puts a context file."""
    return "/app/" + context_path


DOCKERFILE_BODY = (
    f"RUN {setup_command()}\n"
    "COPY . /app/\n"
    "COPY .npmrc /root/.npmrc\n"
    f"RUN rm /app/id_rsa {BUILD_OBJECT} && chmod -R 755 /app/bin\n"
)
STEPS = ("setup", "copy", "npmrc", "clean")

# (rule, subject) -> {path: step that wrote it}, for findings on files alive in the final image.
CONTEXT_LEAKS: dict[str, list[str]] = {
    "git": [".git/HEAD", ".git/config", ".git/objects/ab/cdef0123456789"],
    "pycache": ["__pycache__/app.cpython-311.pyc"],
    "tests": ["tests/test_app.py"],
    "logs": ["app.log"],
    "node_modules": ["node_modules/leftpad/index.js"],
    "ds_store": [".DS_Store"],
    "editor-swap": [".app.py.swp"],
    "dockerfile": ["Dockerfile"],
}
ALIVE: dict[tuple[str, str], dict[str, str]] = {
    ("package-cache", "apt-lists"): {APT_LISTS: "setup"},
    ("package-cache", "apt-archives"): {APT_DEB: "setup"},
    ("package-cache", "apt-cache"): {APT_PKGCACHE: "setup", APT_SRCPKGCACHE: "setup"},
    ("package-cache", "pip"): {PIP_ROOT: "setup", PIP_HOME: "setup"},
    ("package-cache", "npm"): {NPM_CONTENT: "setup", NPM_INDEX: "setup"},
    ("toolchain-files", "compilers"): {GCC: "setup", CC1: "setup"},
    ("toolchain-files", "build-tools"): {MAKE: "setup"},
    ("toolchain-files", "headers"): {STDIO_H: "setup"},
    ("toolchain-files", "static-libraries"): {STATIC_LIB: "setup"},
    # gcc-12 and make are installed build packages; zlib1g is not one, libc6-dev is removed.
    ("toolchain-packages", "dpkg"): {GCC: "setup", CC1: "setup", GCC_COPYRIGHT: "setup",
                                     MAKE: "setup", MAKE_MAN: "setup"},
    ("docs", "doc"): {GCC_COPYRIGHT: "setup", BUSYBOX_README: "setup"},
    ("docs", "man"): {MAKE_MAN: "setup"},
    ("docs", "info"): {MAKE_INFO: "setup"},
    ("docs", "locale"): {MAKE_MO: "setup"},
    **{("build-context", subject): {copied(p): "copy" for p in paths}
       for subject, paths in CONTEXT_LEAKS.items()},
    ("secret", "dotenv"): {"/app/.env": "copy"},
    ("secret", "npmrc"): {"/app/.npmrc": "copy", "/root/.npmrc": "npmrc"},
}
# Rules whose findings name live files the image does not need: applying every recommendation
# removes them, so they count toward the optimized size (a live secret goes with
# `build-secrets`).
REMOVABLE_RULES = {"package-cache", "toolchain-files", "toolchain-packages", "build-context",
                   "docs", "secret"}
# (rule, (writing step, hiding step)) -> {path: step that wrote it}, for content hidden later.
HIDDEN: dict[tuple[str, tuple[str, str]], dict[str, str]] = {
    ("hidden-waste", ("setup", "clean")): {BUILD_OBJECT: "setup"},
    ("hidden-waste", ("copy", "clean")): {"/app/id_rsa": "copy"},
    ("identical-rewrite", ("copy", "clean")): {"/app/bin/run.sh": "copy"},
}


class Layout:
    """The image's layer indices and file sizes, as this module wrote them."""

    def __init__(self, images: SessionImages, base: BaseImage) -> None:
        self.first = base.layer_count
        self.dockerfile = images.dockerfile_text(DOCKERFILE_BODY).encode()
        self.sizes: dict[str, int] = dict(ZERO_FILES)
        self.sizes.update({path: text_bytes(path) for path in TEXT_FILES})
        self.sizes.update({copied(p): len(c) for p, c in CONTEXT.items()})
        self.sizes[copied("Dockerfile")] = len(self.dockerfile)
        self.sizes["/root/.npmrc"] = len(NPMRC)

    def layer(self, step: str) -> int:
        return self.first + STEPS.index(step)

    def final_paths(self) -> set[str]:
        return set(self.sizes) - {BUILD_OBJECT, "/app/id_rsa"}


@pytest.fixture(scope="module")
def layout(images: SessionImages, base_image: BaseImage) -> Layout:
    return Layout(images, base_image)


@pytest.fixture(scope="module")
def findings_image(images: SessionImages) -> str:
    return images.build("findings", DOCKERFILE_BODY, context=CONTEXT)


@pytest.fixture(scope="module")
def report(imagescope: Cli, findings_image: str) -> dict[str, Any]:
    return inspect_json(imagescope, findings_image)


@pytest.fixture(scope="module")
def base_report(imagescope: Cli, base_image: BaseImage) -> dict[str, Any]:
    return inspect_json(imagescope, base_image.tag)


def ours(findings: Iterable[dict[str, Any]], layout: Layout) -> list[dict[str, Any]]:
    """The findings about this module's layers (a base already in the engine may have its own)."""
    return [f for f in findings if any(i >= layout.first for i in f["layers"])
            or f["rule"] in ("root-user", "layer-count")]


Key = tuple[str, str]  # (rule, subject)
FileRow = tuple[int, int, int | None]  # (bytes, layer_index, hidden_by_layer)


def by_key(findings: Iterable[dict[str, Any]]) -> dict[Key, list[dict[str, Any]]]:
    """Findings by (rule, subject): a rule may split one subject by layer (secrets do)."""
    keyed: dict[Key, list[dict[str, Any]]] = {}
    for finding in findings:
        keyed.setdefault((finding["rule"], finding["subject"]), []).append(finding)
    return keyed


def files(findings: Iterable[dict[str, Any]]) -> dict[str, FileRow]:
    """The files of findings sharing a key, each checked to be counted once and in full."""
    rows: dict[str, FileRow] = {}
    for finding in findings:
        assert finding["file_count"] == len(finding["files"])
        assert finding["bytes"] == sum(f["bytes"] for f in finding["files"])
        for f in finding["files"]:
            assert f["path"] not in rows, f"{f['path']} twice under one rule and subject"
            rows[f["path"]] = (f["bytes"], f["layer_index"], f["hidden_by_layer"])
    return rows


def secret_free(text: str) -> None:
    for secret in SECRET_STRINGS:
        assert secret not in text


# --- the image is what the module thinks it is ----------------------------------------------

def test_final_filesystem_holds_exactly_the_bytes_written(
        report: dict[str, Any], base_report: dict[str, Any], layout: Layout) -> None:
    base = base_report["summary"]
    summary = report["summary"]
    assert summary["layer_count"] == base["layer_count"] + len(STEPS)
    assert summary["final_bytes"] == base["final_bytes"] + sum(
        layout.sizes[p] for p in layout.final_paths())
    rewritten = layout.sizes["/app/bin/run.sh"]
    assert summary["total_bytes"] == base["total_bytes"] + sum(layout.sizes.values()) + rewritten
    instructions = [layer["instruction"] for layer in report["layers"][layout.first:]]
    assert instructions[0] == f"RUN {setup_command()}"
    assert instructions[3] == f"RUN rm /app/id_rsa {BUILD_OBJECT} && chmod -R 755 /app/bin"
    assert [i.split(" ", 1)[0] for i in instructions] == ["RUN", "COPY", "COPY", "RUN"]


# --- findings ---------------------------------------------------------------------------------

@pytest.mark.parametrize("key", sorted(ALIVE), ids=lambda key: ":".join(key))
def test_finding_on_live_files(report: dict[str, Any], layout: Layout, key: Key) -> None:
    found = by_key(ours(report["findings"], layout))
    assert key in found, f"no {key} finding; found {sorted(found)}"
    expected = {path: (layout.sizes[path], layout.layer(step), None)
                for path, step in ALIVE[key].items()}
    assert files(found[key]) == expected
    for finding in found[key]:
        assert finding["layers"] == sorted({f["layer_index"] for f in finding["files"]})
        assert finding["removable"] is (key[0] in REMOVABLE_RULES)
        secret_free(finding["title"] + finding["detail"])


@pytest.mark.parametrize("key", sorted(HIDDEN), ids=lambda key: f"{key[0]}:{'->'.join(key[1])}")
def test_finding_on_hidden_files(report: dict[str, Any], layout: Layout,
                                 key: tuple[str, tuple[str, str]]) -> None:
    rule, (writer, hider) = key
    subject = f"{layout.layer(writer)}->{layout.layer(hider)}"
    found = by_key(ours(report["findings"], layout))
    assert (rule, subject) in found, f"no {rule} {subject}; found {sorted(found)}"
    assert len(found[(rule, subject)]) == 1
    finding = found[(rule, subject)][0]
    assert files([finding]) == {path: (layout.sizes[path], layout.layer(step), layout.layer(hider))
                                for path, step in HIDDEN[key].items()}
    assert finding["layers"] == [layout.layer(writer), layout.layer(hider)]
    assert finding["removable"] is False


def test_private_key_deleted_later_is_a_secret_in_the_lower_layer(
        report: dict[str, Any], layout: Layout) -> None:
    found = by_key(ours(report["findings"], layout))
    key = ("secret-in-lower-layer", "private-key")
    assert key in found, f"found {sorted(found)}"
    assert files(found[key]) == {"/app/id_rsa": (len(PRIVATE_KEY), layout.layer("copy"),
                                                 layout.layer("clean"))}
    (finding,) = found[key]
    assert layout.layer("copy") in finding["layers"]  # the layer that holds it
    assert finding["severity"] == "high"
    assert finding["removable"] is False  # deleting it again changes nothing
    assert f"layer {layout.layer('copy')}" in finding["title"] + finding["detail"]
    assert ("secret", "private-key") not in found  # it is not alive


def test_no_other_findings(report: dict[str, Any], layout: Layout) -> None:
    """Negatives: a public .pem, a tokenless .npmrc, .git/config, node_modules and a log made by
    RUN, npm's log dir, a shared library, the app itself, the package database: no finding names
    them, beyond the findings this module expects."""
    found = by_key(ours(report["findings"], layout))
    expected = set(ALIVE) | {("secret-in-lower-layer", "private-key")}
    expected |= {(rule, f"{layout.layer(w)}->{layout.layer(h)}") for rule, (w, h) in HIDDEN}
    assert {key for key in found if key[0] != "root-user"} == expected
    for innocent in ("/app/cert.pem", HOME_NPMRC, "/app/.git/config", BUILT_NODE_MODULES,
                     BUILD_LOG, NPM_LOG, SHARED_LIB, "/app/app.py", DPKG_STATUS, GCC_LIST,
                     ZLIB_LIST):
        owners = {key for key, group in found.items()
                  if innocent in {ref["path"] for finding in group for ref in finding["files"]}}
        assert owners <= {key for key, paths in ALIVE.items() if innocent in paths}, innocent


def test_dpkg_finding_names_only_the_installed_build_packages(
        report: dict[str, Any], layout: Layout) -> None:
    (finding,) = by_key(ours(report["findings"], layout))[("toolchain-packages", "dpkg")]
    # The title names the packages (the detail quotes the step, which wrote the whole database).
    title = finding["title"]
    assert "gcc-12" in title and "make" in title
    # zlib1g is installed but no build package; libc6-dev is a -dev package, removed.
    assert "zlib1g" not in title and "libc6-dev" not in title


def test_base_image_has_no_finding_but_root_user(
        base_image: BaseImage, base_report: dict[str, Any]) -> None:
    if base_image.file_bytes is None:
        pytest.skip(f"{base_image.tag} was already in the engine: its contents are unknown")
    assert [f["rule"] for f in base_report["findings"]] == ["root-user"]
    assert base_report["optimized"]["optimized_bytes"] == base_report["summary"]["final_bytes"]


def test_root_user_without_user_instruction(report: dict[str, Any]) -> None:
    rules = [f for f in report["findings"] if f["rule"] == "root-user"]
    assert len(rules) == 1
    assert rules[0]["bytes"] == 0 and rules[0]["files"] == []
    assert rules[0]["removable"] is False


@pytest.mark.parametrize(("user", "is_root"), [("1000", False), ("app", False), ("0", True),
                                               ("root", True), ("0:0", True)])
def test_user_instruction_decides_root_user(
        imagescope: Cli, images: SessionImages, base_report: dict[str, Any], user: str,
        is_root: bool) -> None:
    """`USER` adds no layer: the image is the base's filesystem with another config."""
    name = "user-" + user.replace(":", "-")
    document = inspect_json(imagescope, images.build(name, f"USER {user}\n"))
    root = [f for f in document["findings"] if f["rule"] == "root-user"]
    assert len(root) == (1 if is_root else 0), root
    non_root = [r for r in document["recommendations"] if r["rule"] == "non-root-user"]
    assert len(non_root) == len(root)
    assert [f for f in document["findings"] if f["rule"] != "root-user"] == [
        f for f in base_report["findings"] if f["rule"] != "root-user"]
    assert document["optimized"] == base_report["optimized"]


def test_many_small_layers_are_a_layer_count_finding(
        imagescope: Cli, images: SessionImages, base_image: BaseImage) -> None:
    """Five RUN steps writing a few bytes each on the busybox base: six layers, five of them
    tiny. (The four-step image above has no layer-count finding: test_no_other_findings.)"""
    steps = [f"printf {'x' * n} > /f{n}" for n in range(1, 6)]
    document = inspect_json(imagescope, images.build(
        "many-layers", "".join(f"RUN {step}\n" for step in steps)))
    first = base_image.layer_count
    assert [layer["added_bytes"] for layer in document["layers"][first:]] == [1, 2, 3, 4, 5]
    (finding,) = [f for f in document["findings"] if f["rule"] == "layer-count"]
    assert set(range(first, first + len(steps))) <= set(finding["layers"])
    assert finding["bytes"] == 0 and finding["files"] == [] and finding["removable"] is False
    (rec,) = recommendations(document, "merge-layers")
    assert rec["saved_bytes"] == 0
    assert rec["steps"] == finding["layers"]


# --- recommendations --------------------------------------------------------------------------

def unique_bytes(layout: Layout, paths: Iterable[str]) -> int:
    return sum(layout.sizes[p] for p in set(paths))


def alive_paths(*rules: str) -> set[str]:
    return {p for (rule, _), paths in ALIVE.items() if rule in rules for p in paths}


def recommendations(report: dict[str, Any], rule: str) -> list[dict[str, Any]]:
    return [r for r in report["recommendations"] if r["rule"] == rule]


def one_recommendation(report: dict[str, Any], rule: str) -> dict[str, Any]:
    found = recommendations(report, rule)
    assert len(found) == 1, (rule, [r["rule"] for r in report["recommendations"]])
    return found[0]


def test_merge_run_for_the_build_file_removed_two_steps_later(
        report: dict[str, Any], layout: Layout) -> None:
    rec = one_recommendation(report, "merge-run")
    setup, clean = layout.layer("setup"), layout.layer("clean")
    assert rec["saved_bytes"] == ZERO_FILES[BUILD_OBJECT]
    assert rec["steps"] == [setup, clean]
    assert rec["addresses"] == [f"hidden-waste:{setup}->{clean}"]
    assert rec["change"].startswith(f"RUN {setup_command()}")
    assert rec["change"].endswith(f"&& rm /app/id_rsa {BUILD_OBJECT} && chmod -R 755 /app/bin")


def test_copy_less_for_the_key_copied_then_removed(report: dict[str, Any], layout: Layout) -> None:
    rec = one_recommendation(report, "copy-less")
    copy, clean = layout.layer("copy"), layout.layer("clean")
    assert rec["saved_bytes"] == len(PRIVATE_KEY)
    assert rec["steps"] == [copy, clean]
    assert rec["addresses"] == [f"hidden-waste:{copy}->{clean}"]


def test_copy_chown_for_chmod_over_copied_files(report: dict[str, Any], layout: Layout) -> None:
    rec = one_recommendation(report, "copy-chown")
    copy, clean = layout.layer("copy"), layout.layer("clean")
    assert rec["saved_bytes"] == len(CONTEXT["bin/run.sh"])
    assert rec["steps"] == [copy, clean]
    assert rec["addresses"] == [f"identical-rewrite:{copy}->{clean}"]
    assert "--chown" in rec["change"] or "--chmod" in rec["change"]
    assert recommendations(report, "avoid-rewrite") == []


def test_multi_stage_saves_toolchain_files_and_package_files_once(
        report: dict[str, Any], layout: Layout) -> None:
    rec = one_recommendation(report, "multi-stage")
    paths = alive_paths("toolchain-files", "toolchain-packages")
    # gcc-12, cc1 and make are both toolchain files and dpkg-owned: counted once.
    assert rec["saved_bytes"] == unique_bytes(layout, paths)
    assert rec["saved_bytes"] < sum(layout.sizes[p] for (rule, _), ps in ALIVE.items()
                                    if rule.startswith("toolchain") for p in ps)
    assert rec["steps"] == [layout.layer("setup")]
    assert sorted(rec["addresses"]) == sorted(
        f"{rule}:{subject}" for rule, subject in ALIVE if rule.startswith("toolchain"))


@pytest.mark.parametrize("subject", ["apt-lists", "apt-archives", "apt-cache", "pip", "npm"])
def test_cache_cleanup_per_cache(report: dict[str, Any], layout: Layout, subject: str) -> None:
    recs = [r for r in recommendations(report, "cache-cleanup")
            if f"package-cache:{subject}" in r["addresses"]]
    assert len(recs) == 1, recommendations(report, "cache-cleanup")
    rec = recs[0]
    # one recommendation per change: apt-archives and apt-cache are both `apt-get clean`
    together = {"apt-archives": ["apt-archives", "apt-cache"],
                "apt-cache": ["apt-archives", "apt-cache"]}.get(subject, [subject])
    assert sorted(rec["addresses"]) == sorted(f"package-cache:{s}" for s in together)
    assert rec["saved_bytes"] == unique_bytes(
        layout, [p for s in together for p in ALIVE[("package-cache", s)]])
    assert rec["steps"] == [layout.layer("setup")]
    hint = {"apt-lists": "rm -rf /var/lib/apt/lists", "apt-archives": "apt-get clean",
            "apt-cache": "apt-get clean", "pip": "--no-cache-dir",
            "npm": "npm cache clean --force"}[subject]
    assert hint in rec["change"]


def test_dockerignore_lists_the_leaked_context_files(
        report: dict[str, Any], layout: Layout) -> None:
    rec = one_recommendation(report, "dockerignore")
    assert rec["saved_bytes"] == unique_bytes(layout, alive_paths("build-context"))
    assert rec["steps"] == [layout.layer("copy")]
    lines = {line.strip() for line in rec["change"].splitlines()}
    assert lines & {".git", ".git/", "**/.git", "**/.git/", "/.git"}, lines
    for needle in ("__pycache__", "tests", ".log", "node_modules", ".DS_Store", ".swp",
                   "Dockerfile"):
        assert any(needle in line for line in lines), (needle, lines)
    # Never the app itself, nor the secrets' names as patterns that would hide that they leaked.
    assert not lines & {"app.py", "package.json", "bin", "*", "**"}


def test_the_generated_dockerignore_keeps_every_leak_out(
        imagescope: Cli, images: SessionImages, report: dict[str, Any], layout: Layout) -> None:
    """Rebuild from the same context with the recommended .dockerignore: no leak is left, and the
    final image shrinks by exactly the bytes the recommendation said (plus the .dockerignore,
    which `COPY . /app/` now copies too)."""
    rec = one_recommendation(report, "dockerignore")
    lines = [line for line in rec["change"].splitlines()[1:] if line.strip()]
    assert lines, rec["change"]
    ignore = ("\n".join(lines) + "\n").encode()
    rebuilt = inspect_json(imagescope, images.build(
        "findings-ignored", DOCKERFILE_BODY, context={**CONTEXT, ".dockerignore": ignore}))
    assert [f for f in rebuilt["findings"] if f["rule"] == "build-context"] == []
    assert recommendations(rebuilt, "dockerignore") == []
    assert rebuilt["summary"]["final_bytes"] == (report["summary"]["final_bytes"]
                                                 - rec["saved_bytes"] + len(ignore))


def test_slim_docs(report: dict[str, Any], layout: Layout) -> None:
    rec = one_recommendation(report, "slim-docs")
    assert rec["saved_bytes"] == unique_bytes(layout, alive_paths("docs"))
    assert rec["steps"] == [layout.layer("setup")]


def test_build_secrets_covers_live_and_deleted_secrets(
        report: dict[str, Any], layout: Layout) -> None:
    rec = one_recommendation(report, "build-secrets")
    assert rec["saved_bytes"] == len(CONTEXT[".env"]) + 2 * len(NPMRC) + len(PRIVATE_KEY)
    # The COPY steps put them there; the step that deleted the key may be named too.
    steps = set(rec["steps"])
    assert {layout.layer("copy"), layout.layer("npmrc")} <= steps
    assert steps <= {layout.layer("copy"), layout.layer("npmrc"), layout.layer("clean")}
    # secret:npmrc is two findings, one per layer holding an .npmrc.
    assert sorted(set(rec["addresses"])) == ["secret-in-lower-layer:private-key",
                                             "secret:dotenv", "secret:npmrc"]
    assert "--mount=type=secret" in rec["change"]


def test_non_root_user(report: dict[str, Any]) -> None:
    rec = one_recommendation(report, "non-root-user")
    assert rec["saved_bytes"] == 0
    assert "USER" in rec["change"]


def test_recommendations_are_ranked_by_severity_then_bytes_saved(
        report: dict[str, Any]) -> None:
    order = {"high": 0, "medium": 1, "low": 2, "info": 3}
    severity = {f"{f['rule']}:{f['subject']}": order[f["severity"]] for f in report["findings"]}
    ranks = [(min(severity[a] for a in r["addresses"]), -r["saved_bytes"])
             for r in report["recommendations"]]
    assert ranks == sorted(ranks)
    assert report["recommendations"][0]["rule"] == "build-secrets"  # a high secret leads
    assert {r["rule"] for r in report["recommendations"]} == {
        "merge-run", "copy-less", "copy-chown", "multi-stage", "cache-cleanup", "dockerignore",
        "slim-docs", "build-secrets", "non-root-user"}


def test_optimized_size_drops_every_hidden_and_removable_file_once(
        report: dict[str, Any], layout: Layout) -> None:
    """Every recommendation applied: the hidden waste goes (merge-run, copy-less, copy-chown
    address all of it) and so does every removable live file, a file two findings share once."""
    removable = alive_paths(*REMOVABLE_RULES)
    # gcc-12's copyright and make's man page are docs and dpkg-owned; gcc-12, cc1 and make are
    # toolchain files and dpkg-owned: each in two findings.
    assert {GCC_COPYRIGHT, MAKE_MAN, GCC, CC1, MAKE} <= removable
    hidden = {path for paths in HIDDEN.values() for path in paths}
    summary, optimized = report["summary"], report["optimized"]
    assert summary["total_bytes"] - unique_bytes(layout, hidden) == summary["final_bytes"]
    assert optimized["shipped_bytes"] == summary["total_bytes"]
    assert optimized["optimized_bytes"] == (summary["final_bytes"]
                                            - unique_bytes(layout, removable))
    assert optimized["saved_bytes"] == (unique_bytes(layout, hidden)
                                        + unique_bytes(layout, removable))


# --- outputs never hold a secret ----------------------------------------------------------------

def test_json_holds_no_secret(imagescope: Cli, findings_image: str) -> None:
    result = imagescope("inspect", findings_image, "--format", "json", "--pull", "never")
    assert result.exit_code == ExitCode.OK, result.stderr
    # Sanity: the secrets are in the image, and the report names the files that hold them.
    assert "/app/.env" in result.stdout and "/root/.npmrc" in result.stdout
    secret_free(result.stdout + result.stderr)


def test_table_holds_no_secret(imagescope: Cli, findings_image: str) -> None:
    result = imagescope("inspect", findings_image, "--pull", "never")
    assert result.exit_code == ExitCode.OK, result.stderr
    secret_free(result.stdout + result.stderr)
    assert "id_rsa" in result.stdout  # the key file is named, its contents are not


def test_markdown_holds_no_secret_and_is_stable(imagescope: Cli, findings_image: str) -> None:
    runs = [imagescope("inspect", findings_image, "--format", "markdown", "--pull", "never")
            for _ in range(2)]
    for result in runs:
        assert result.exit_code == ExitCode.OK, result.stderr
        secret_free(result.stdout + result.stderr)
        assert len(result.stdout) <= 65536
        assert "<details>" in result.stdout
    assert runs[0].stdout == runs[1].stdout
    text = runs[0].stdout
    assert "id_rsa" in text and ".dockerignore" in text
