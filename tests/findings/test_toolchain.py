"""Toolchains left in the final image: by path, and by the dpkg and apk databases."""

from __future__ import annotations

import pytest

from imagescope.analysis.findings import toolchain
from imagescope.analysis.findings.model import Category, Finding, Severity
from imagescope.model import Entry
from tests.stacks import captured, file, hardlink, symlink, view, whiteout


def by_subject(findings: list[Finding]) -> dict[str, tuple[int, list[tuple[str, int]]]]:
    return {f.subject: (f.bytes, [(r.path, r.bytes) for r in f.files]) for f in findings}


@pytest.mark.parametrize(("path", "subject"), [
    ("usr/bin/gcc-12", "compilers"),
    ("usr/bin/x86_64-linux-gnu-gcc-12", "compilers"),
    ("usr/bin/x86_64-linux-gnu-g++", "compilers"),
    ("usr/local/bin/clang++-17", "compilers"),
    ("usr/bin/cpp-12", "compilers"),
    ("usr/lib/gcc/x86_64-linux-gnu/12/cc1", "compilers"),
    ("usr/lib/gcc/x86_64-linux-gnu/12/cc1plus", "compilers"),
    ("usr/lib/gcc/x86_64-linux-gnu/12/lto1", "compilers"),
    ("usr/libexec/gcc/x86_64-alpine-linux-musl/12.2.1/cc1", "compilers"),
    ("usr/bin/make", "build-tools"),
    ("usr/local/bin/cmake", "build-tools"),
    ("usr/bin/ld.bfd", "build-tools"),
    ("usr/bin/x86_64-linux-gnu-ld.gold", "build-tools"),
    ("usr/bin/x86_64-linux-gnu-as", "build-tools"),
    ("usr/include/stdio.h", "headers"),
    ("usr/include/x86_64-linux-gnu/bits/types.h", "headers"),
    ("usr/local/include/python3.12/Python.h", "headers"),
    ("usr/lib/x86_64-linux-gnu/libc_nonshared.a", "static-libraries"),
    ("usr/lib/gcc/x86_64-linux-gnu/12/libgcc.a", "static-libraries"),
    ("usr/local/lib/libpython3.12.a", "static-libraries"),
    ("lib/libfoo.a", "static-libraries"),
    ("usr/local/cargo/bin/rustc", "rust"),
    ("root/.cargo/bin/cargo", "rust"),
    ("usr/local/rustup/toolchains/1.75-x86_64-unknown-linux-gnu/lib/librustc_driver.so", "rust"),
    ("root/.rustup/toolchains/stable/bin/rustc", "rust"),
    ("usr/local/go/bin/go", "go"),
    ("usr/local/go/pkg/tool/linux_amd64/compile", "go"),
])
def test_toolchain_file_kinds(path: str, subject: str) -> None:
    (finding,) = toolchain.find(view([file(path, 321)]))
    assert (finding.rule, finding.category, finding.subject) == (
        "toolchain-files", Category.TOOLCHAIN, subject)
    assert (finding.bytes, finding.removable) == (321, True)


@pytest.mark.parametrize("path", [
    "usr/bin/python3.11",
    "usr/bin/ldd",  # libc-bin, a run-time tool
    "usr/bin/asciidoc",  # begins like binutils' `as`
    "usr/local/cargo/bin/myapp",  # `cargo install`ed: the app itself
    "usr/lib/x86_64-linux-gnu/libc.so.6",
    "usr/share/gcc/python/libstdcxx/v6/printers.py",
    "usr/local/lib/python3.12/site-packages/numpy/core/include/numpy/arrayobject.h",
    "app/include/config.h",
    "usr/lib/go/src/fmt/print.go",
])
def test_not_toolchain_files(path: str) -> None:
    assert toolchain.find(view([file(path, 10)])) == []


def test_toolchain_files_sum_per_kind_with_hardlinks_once() -> None:
    # compilers: gcc-12 4000 (+ the hardlink x86_64-linux-gnu-gcc-12 to it) + cc1 25000;
    # headers 300 + 200; the symlink /usr/bin/gcc reaches no content of its own
    v = view([file("usr/bin/gcc-12", 4000),
              hardlink("usr/bin/x86_64-linux-gnu-gcc-12", "usr/bin/gcc-12"),
              symlink("usr/bin/gcc", "gcc-12"),
              file("usr/lib/gcc/x86_64-linux-gnu/12/cc1", 25000),
              file("usr/include/stdio.h", 300), file("usr/include/stdlib.h", 200)])
    assert by_subject(toolchain.find_files(v)) == {
        "compilers": (29000, [("/usr/lib/gcc/x86_64-linux-gnu/12/cc1", 25000),
                              ("/usr/bin/gcc-12", 4000)]),
        "headers": (500, [("/usr/include/stdio.h", 300), ("/usr/include/stdlib.h", 200)]),
    }


def test_a_large_toolchain_is_high_severity() -> None:
    v = view([file("usr/local/go/bin/go", toolchain.HIGH_BYTES)])
    assert [f.severity for f in toolchain.find(v)] == [Severity.HIGH]


# --- dpkg -------------------------------------------------------------------------------------

STATUS = b"""Package: gcc-12
Status: install ok installed
Architecture: amd64
Version: 12.2.0-14
Description: GNU C compiler
 A continuation line: Package: not-a-package

Package: gcc-12-base
Status: install ok installed
Architecture: amd64

Package: libc6-dev
Status: install ok installed
Architecture: amd64
Multi-Arch: same

Package: make
Status: deinstall ok config-files
Architecture: amd64

Package: zlib1g
Status: install ok installed
Architecture: amd64
Multi-Arch: same

Package: cmake
Status: hold ok installed
Architecture: amd64
"""


def dpkg_layer() -> list[Entry]:
    return [
        captured("var/lib/dpkg/status", STATUS),
        captured("var/lib/dpkg/info/gcc-12.list", b"/.\n/usr\n/usr/bin\n/usr/bin/gcc-12\n"
                 b"/usr/lib/gcc/x86_64-linux-gnu/12/cc1\n/usr/share/man/man1/gcc-12.1.gz\n"),
        captured("var/lib/dpkg/info/gcc-12-base:amd64.list", b"/usr/share/doc/gcc-12-base\n"
                 b"/usr/share/doc/gcc-12-base/copyright\n"),
        # multi-arch: the list is named package:arch; /lib is merged into /usr/lib
        captured("var/lib/dpkg/info/libc6-dev:amd64.list",
                 b"/.\n/usr/include/stdio.h\n/lib/x86_64-linux-gnu/crt1.o\n"),
        captured("var/lib/dpkg/info/make.list", b"/usr/bin/make\n"),
        captured("var/lib/dpkg/info/zlib1g:amd64.list", b"/usr/lib/x86_64-linux-gnu/libz.so.1\n"),
        captured("var/lib/dpkg/info/cmake.list", b"/usr/bin/cmake\n"),
        file("usr/bin/gcc-12", 4000),
        file("usr/lib/gcc/x86_64-linux-gnu/12/cc1", 25000),
        file("usr/share/doc/gcc-12-base/copyright", 90),
        file("usr/include/stdio.h", 300),
        file("usr/lib/x86_64-linux-gnu/crt1.o", 60),
        file("usr/bin/make", 2000),  # make was removed: its leftover is no package file
        file("usr/lib/x86_64-linux-gnu/libz.so.1", 120),
        file("usr/bin/cmake", 7000),
    ]


def test_dpkg_build_packages_own_exact_bytes() -> None:
    # gcc-12: 4000 + 25000 (its man page is absent); libc6-dev: 300 + 60 (found under /usr/lib);
    # cmake (held, still installed): 7000. Not: gcc-12-base (run time), make (removed), zlib1g.
    v = view(dpkg_layer(), [whiteout("usr/bin/cmake")])  # and cmake's binary is gone after all
    (finding,) = toolchain.find_packages(v)
    assert (finding.rule, finding.subject, finding.removable) == ("toolchain-packages", "dpkg",
                                                                  True)
    assert finding.bytes == 4000 + 25000 + 300 + 60
    assert [(r.path, r.bytes, r.layer_index) for r in finding.files] == [
        ("/usr/lib/gcc/x86_64-linux-gnu/12/cc1", 25000, 0), ("/usr/bin/gcc-12", 4000, 0),
        ("/usr/include/stdio.h", 300, 0), ("/usr/lib/x86_64-linux-gnu/crt1.o", 60, 0)]
    assert "packages: cmake, gcc-12, libc6-dev;" in finding.detail
    assert "gcc-12-base" not in finding.title + finding.detail
    assert "zlib1g" not in finding.title + finding.detail
    assert finding.title == "3 build package(s) installed (dpkg): cmake, gcc-12, libc6-dev"


def test_a_file_in_two_build_packages_counts_once() -> None:
    status = (b"Package: a-dev\nStatus: install ok installed\nArchitecture: all\n\n"
              b"Package: b-dev\nStatus: install ok installed\nArchitecture: all\n")
    v = view([captured("var/lib/dpkg/status", status),
              captured("var/lib/dpkg/info/a-dev.list", b"/usr/include/x.h\n"),
              captured("var/lib/dpkg/info/b-dev.list", b"/usr/include/x.h\n/usr/include/y.h\n"),
              file("usr/include/x.h", 10), file("usr/include/y.h", 5)])
    assert [f.bytes for f in toolchain.find_packages(v)] == [15]


def test_no_package_database_no_package_finding() -> None:
    assert toolchain.find_packages(view([file("usr/bin/gcc-12", 4000)])) == []


def test_a_package_database_without_captured_content_is_skipped() -> None:
    v = view([file("var/lib/dpkg/status", 5000), file("usr/bin/gcc-12", 10)])
    assert toolchain.find_packages(v) == []


# --- apk --------------------------------------------------------------------------------------

INSTALLED = b"""C:Q1abc=
P:musl
V:1.2.4-r2
F:lib
R:ld-musl-x86_64.so.1

C:Q1def=
P:gcc
V:13.2.1-r0
F:usr/bin
R:gcc
R:x86_64-alpine-linux-musl-gcc
F:usr/libexec/gcc/x86_64-alpine-linux-musl/13.2.1
R:cc1

P:musl-dev
V:1.2.4-r2
F:usr/include
R:stdio.h

P:llvm15-libs
F:usr/lib
R:libLLVM-15.so
"""


def test_apk_build_packages_own_exact_bytes() -> None:
    # gcc: 900 + 900 (a hardlink: once) + 30000; musl-dev: 200. Not: musl, llvm15-libs.
    v = view([captured("lib/apk/db/installed", INSTALLED),
              file("lib/ld-musl-x86_64.so.1", 600),
              file("usr/bin/gcc", 900),
              hardlink("usr/bin/x86_64-alpine-linux-musl-gcc", "usr/bin/gcc"),
              file("usr/libexec/gcc/x86_64-alpine-linux-musl/13.2.1/cc1", 30000),
              file("usr/include/stdio.h", 200),
              file("usr/lib/libLLVM-15.so", 90000)])
    (finding,) = toolchain.find_packages(v)
    assert (finding.subject, finding.bytes) == ("apk", 900 + 30000 + 200)
    assert [r.path for r in finding.files] == [
        "/usr/libexec/gcc/x86_64-alpine-linux-musl/13.2.1/cc1", "/usr/bin/gcc",
        "/usr/include/stdio.h"]
    assert "packages: gcc, musl-dev;" in finding.detail


def test_find_reports_files_and_packages_together() -> None:
    v = view(dpkg_layer())
    assert sorted((f.rule, f.subject) for f in toolchain.find(v)) == [
        ("toolchain-files", "build-tools"), ("toolchain-files", "compilers"),
        ("toolchain-files", "headers"), ("toolchain-packages", "dpkg")]
