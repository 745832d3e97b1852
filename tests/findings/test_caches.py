"""Package-manager caches alive in the final image: one finding per kind, exact bytes."""

from __future__ import annotations

import pytest

from imagescope.analysis.findings import caches
from imagescope.analysis.findings.model import Category, Severity
from imagescope.analysis.findings.view import ImageView
from tests.stacks import directory, file, hardlink, view, whiteout

RUN = "/bin/sh -c apt-get update && apt-get install -y curl"
PIP = "/bin/sh -c pip install -r requirements.txt"


def found(v: ImageView) -> dict[str, tuple[int, list[tuple[str, int, int]]]]:
    return {f.subject: (f.bytes, [(r.path, r.bytes, r.layer_index) for r in f.files])
            for f in caches.find(v)}


@pytest.mark.parametrize(("path", "subject"), [
    ("var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease", "apt-lists"),
    ("var/lib/apt/lists/partial/deb.debian.org_x", "apt-lists"),
    ("var/cache/apt/archives/curl_7.88_amd64.deb", "apt-archives"),
    ("var/cache/apt/archives/partial/curl_7.88_amd64.deb", "apt-archives"),
    ("var/cache/apt/pkgcache.bin", "apt-cache"),
    ("var/cache/apt/srcpkgcache.bin", "apt-cache"),
    ("var/cache/apk/APKINDEX.1234.tar.gz", "apk"),
    ("var/cache/dnf/fedora-1234/repodata/primary.xml.zst", "dnf"),
    ("var/cache/yum/x86_64/7/base/packages/x.rpm", "yum"),
    ("root/.cache/pip/http-v2/a/b/c", "pip"),
    ("home/app/.cache/pip/wheels/ab/x.whl", "pip"),
    ("root/.npm/_cacache/content-v2/sha512/ab/cd", "npm"),
    ("home/node/.npm/_cacache/index-v5/12/34", "npm"),
    ("root/.cache/yarn/v6/npm-x.tgz", "yarn"),
    ("usr/local/share/.cache/yarn/v6/npm-x/package.json", "yarn"),
    ("root/.local/share/pnpm/store/v3/files/ab/cd", "pnpm"),
    ("home/app/.pnpm-store/v3/files/ab", "pnpm"),
    ("root/.cache/go-build/ab/abcdef-d", "go-build"),
    ("go/pkg/mod/github.com/x/y@v1.0.0/y.go", "go-mod"),
    ("root/go/pkg/mod/cache/download/x.zip", "go-mod"),
    ("root/.cargo/registry/cache/index.crates.io-x/serde-1.0.crate", "cargo"),
    ("usr/local/cargo/registry/src/index.crates.io-x/serde-1.0/lib.rs", "cargo"),
    ("root/.m2/repository/org/x/x-1.0.jar", "maven"),
    ("home/app/.gradle/caches/modules-2/files-2.1/x.jar", "gradle"),
    ("opt/conda/pkgs/numpy-1.26.tar.bz2", "conda"),
    ("opt/miniconda3/pkgs/numpy-1.26.conda", "conda"),
    ("root/anaconda3/pkgs/numpy-1.26.conda", "conda"),
    ("root/.cache/pypoetry/artifacts/ab/x.whl", "poetry"),
])
def test_each_cache_kind_at_a_real_path(path: str, subject: str) -> None:
    assert found(view([file(path, 123)])) == {subject: (123, [("/" + path, 123, 0)])}


@pytest.mark.parametrize("path", [
    "var/lib/apt/lists/lock",  # apt's lock, not a list
    "var/cache/apt/archives/lock",
    "var/cache/apt/archives/curl.deb.txt",
    "home/.cache/pip/x",  # not a home: /home itself
    "srv/.cache/pip/x",
    "root/.npm/_logs/2024-debug-0.log",  # npm's logs are not its cache
    "var/lib/dpkg/status",
    "usr/lib/python3/dist-packages/pip/_internal/cache.py",
])
def test_not_a_cache(path: str) -> None:
    assert found(view([file(path, 50)])) == {}


def test_apt_lists_bytes_are_the_lists_alone() -> None:
    # 1000 + 2500 bytes of lists; the lock (0 bytes) and the empty partial/ directory are not
    v = view([directory("var/lib/apt/lists"), directory("var/lib/apt/lists/partial"),
              file("var/lib/apt/lists/lock", 0), file("var/lib/apt/lists/a_Packages", 2500),
              file("var/lib/apt/lists/a_InRelease", 1000), file("usr/bin/curl", 9000)],
             steps=[RUN])
    (finding,) = caches.find(v)
    assert (finding.rule, finding.category, finding.subject) == (
        "package-cache", Category.PACKAGE_CACHE, "apt-lists")
    assert finding.bytes == 3500
    assert [(r.path, r.bytes) for r in finding.files] == [
        ("/var/lib/apt/lists/a_Packages", 2500), ("/var/lib/apt/lists/a_InRelease", 1000)]
    assert finding.removable is True
    assert finding.severity is Severity.MEDIUM
    assert finding.layers == (0,)
    assert finding.detail == "written by layer 0 (RUN); not needed at run time"


def test_only_what_is_alive_in_the_final_image_counts() -> None:
    # layer 0 writes 400 + 600 of pip cache; layer 1 removes the 600; layer 2 overwrites the
    # 400 with 70 and adds 30 for root and 5 for /home/app: 70 + 30 + 5 = 105 bytes alive
    v = view([file("root/.cache/pip/a", 400), file("root/.cache/pip/b", 600)],
             [whiteout("root/.cache/pip/b")],
             [file("root/.cache/pip/a", 70), file("root/.cache/pip/c", 30),
              file("home/app/.cache/pip/d", 5)],
             steps=[PIP, "/bin/sh -c rm -rf /root/.cache/pip/b", PIP])
    assert found(v) == {"pip": (105, [("/root/.cache/pip/a", 70, 2),
                                      ("/root/.cache/pip/c", 30, 2),
                                      ("/home/app/.cache/pip/d", 5, 2)])}


def test_a_removed_cache_is_not_reported() -> None:
    v = view([file("var/cache/apk/APKINDEX.tar.gz", 800)], [whiteout("var/cache/apk")])
    assert caches.find(v) == []


def test_kinds_are_separate_findings_across_layers() -> None:
    # apt lists 10 (layer 0) + 20 (layer 1); npm 7 (layer 1)
    v = view([file("var/lib/apt/lists/x", 10)],
             [file("var/lib/apt/lists/y", 20), file("root/.npm/_cacache/z", 7)])
    by_subject = {f.subject: f for f in caches.find(v)}
    assert {s: (f.bytes, f.layers) for s, f in by_subject.items()} == {
        "apt-lists": (30, (0, 1)), "npm": (7, (1,))}


def test_hardlinked_cache_content_counts_once() -> None:
    v = view([file("root/.cache/pip/a", 300), hardlink("root/.cache/pip/b", "root/.cache/pip/a")])
    assert found(v) == {"pip": (300, [("/root/.cache/pip/a", 300, 0)])}


def test_empty_cache_files_make_no_finding() -> None:
    assert caches.find(view([file("var/cache/apk/.keep", 0)])) == []


def test_a_large_cache_is_high_severity() -> None:
    v = view([file("var/cache/apt/archives/a.deb", caches.HIGH_BYTES - 1),
              file("var/cache/apk/x", caches.HIGH_BYTES)])
    assert {f.subject: f.severity for f in caches.find(v)} == {
        "apt-archives": Severity.MEDIUM, "apk": Severity.HIGH}


def test_every_kind_has_a_label() -> None:
    assert {subject for subject, _ in caches.CACHES} == set(caches.LABELS)
