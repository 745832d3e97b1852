"""Build toolchains left in the final image, by path and by package database (pure).

Two rules. `toolchain-files` finds compilers, build tools, headers, static archives and the Rust
and Go toolchains by where they live (the tables below). `toolchain-packages` reads the final
package database — dpkg's `status` with `info/<package>.list`, or apk's `installed` — and
reports the build packages installed (the name tables below) with the exact bytes of the files
they own that are present. Neither is needed to run a built program: both are removable by
building in a separate stage. A file can appear in both rules; each finding counts it once.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable

from imagescope.analysis.findings.model import Category, Finding, Severity, make_finding
from imagescope.analysis.findings.tables import (
    PathTable,
    alive_refs,
    choice,
    grouped_findings,
    severity_by_bytes,
    steps_text,
)
from imagescope.analysis.findings.view import ImageView, LiveFile

FILES_RULE = "toolchain-files"
PACKAGES_RULE = "toolchain-packages"

# A toolchain is a medium finding; one this large is a high one.
HIGH_BYTES = 100 << 20

BIN_DIRS = "usr/{,local/}bin"
TRIPLET = "{,*-*-*-}"  # none, or x86_64-linux-gnu-, aarch64-alpine-linux-musl-, …
# Compiler drivers, also as `NAME-<version>`, `<triplet>-NAME` and `<triplet>-NAME-<version>`.
COMPILER_DRIVERS = ("gcc", "g++", "cc", "c++", "cpp", "clang", "clang++")
# gcc's compiler proper and helpers, anywhere below gcc's library directories.
COMPILER_PROGRAMS = ("cc1", "cc1plus", "cc1obj", "lto1", "lto-wrapper", "collect2")
# binutils, also as `<triplet>-NAME`.
BINUTILS = ("as", "ld", "ld.bfd", "ld.gold", "ar", "ranlib", "nm", "objcopy", "objdump",
            "readelf", "strip")
BUILD_PROGRAMS = ("make", "gmake", "cmake", "cmake3", "ctest", "cpack")
RUST_PROGRAMS = ("rustc", "rustdoc", "cargo", "rustup", "rustfmt", "cargo-fmt", "cargo-clippy",
                 "clippy-driver", "rust-gdb", "rust-lldb", "rust-analyzer")

# (subject, glob), first match wins; `~/` is any home, `{a,b}` one of a and b.
TOOLCHAIN_FILES: tuple[tuple[str, str], ...] = (
    ("compilers", f"{BIN_DIRS}/{TRIPLET}{choice(COMPILER_DRIVERS)}{{,-*}}"),
    ("compilers", f"usr/{{lib,libexec}}/gcc/**/{choice(COMPILER_PROGRAMS)}"),
    ("build-tools", f"{BIN_DIRS}/{TRIPLET}{choice(BINUTILS)}"),
    ("build-tools", f"{BIN_DIRS}/{choice(BUILD_PROGRAMS)}"),
    ("headers", "usr/{,local/}include/**"),
    ("static-libraries", "usr/{lib,lib64,local/lib}/**/*.a"),
    ("static-libraries", "lib/**/*.a"),
    ("static-libraries", "lib64/**/*.a"),
    ("rust", f"{BIN_DIRS}/{choice(RUST_PROGRAMS)}"),
    ("rust", f"usr/local/cargo/bin/{choice(RUST_PROGRAMS)}"),
    ("rust", f"~/.cargo/bin/{choice(RUST_PROGRAMS)}"),
    ("rust", "~/.rustup/toolchains/**"),
    ("rust", "usr/local/rustup/**"),
    ("go", "usr/local/go/**"),
)

LABELS: dict[str, str] = {
    "compilers": "compilers",
    "build-tools": "build tools (make, cmake, binutils)",
    "headers": "C/C++ headers",
    "static-libraries": "static libraries (*.a)",
    "rust": "the Rust toolchain",
    "go": "the Go toolchain (/usr/local/go)",
}

# Packages only a build needs, matched on the package name (fnmatch). Runtime packages that
# merely share a prefix are listed in the NOT_ tables.
DPKG_BUILD_PACKAGES = (
    "build-essential", "gcc", "gcc-*", "g++", "g++-*", "cpp", "cpp-*", "*-dev", "make",
    "cmake", "cmake-data", "binutils", "binutils-*", "libc6-dev", "clang*", "llvm*",
    "autoconf", "automake", "libtool", "pkg-config", "pkgconf",
)
DPKG_NOT_BUILD_PACKAGES = ("gcc-*-base",)  # libgcc-s1 depends on it
APK_BUILD_PACKAGES = (
    "build-base", "gcc", "g++", "musl-dev", "libc-dev", "make", "cmake", "*-dev", "binutils",
    "binutils-*", "clang*", "llvm*", "autoconf", "automake", "libtool", "pkgconf",
    "fortify-headers",
)
APK_NOT_BUILD_PACKAGES = ("*-libs",)  # llvm15-libs and the like are run-time libraries

DPKG_STATUS = "var/lib/dpkg/status"
DPKG_INFO = "var/lib/dpkg/info"
APK_INSTALLED = "lib/apk/db/installed"
# Top-level directories merged into /usr on usrmerge systems: dpkg still lists /bin/x, /lib/x.
MERGED_DIRS = frozenset({"bin", "sbin", "lib", "lib32", "lib64", "libx32"})

_FILES = PathTable(TOOLCHAIN_FILES)


def _name_regex(include: Iterable[str], exclude: Iterable[str]) -> re.Pattern[str]:
    wanted = "|".join(fnmatch.translate(p) for p in include)
    unwanted = "|".join(fnmatch.translate(p) for p in exclude)
    return re.compile(f"(?!(?:{unwanted}))(?:{wanted})" if unwanted else wanted)


_DPKG_BUILD = _name_regex(DPKG_BUILD_PACKAGES, DPKG_NOT_BUILD_PACKAGES)
_APK_BUILD = _name_regex(APK_BUILD_PACKAGES, APK_NOT_BUILD_PACKAGES)


def find(view: ImageView) -> list[Finding]:
    return find_files(view) + find_packages(view)


def find_files(view: ImageView) -> list[Finding]:
    """One finding per kind of toolchain file holding bytes in the final image."""
    return grouped_findings(view, _FILES, rule=FILES_RULE, category=Category.TOOLCHAIN,
                            labels=LABELS, severity=_severity,
                            why="a built program does not need them at run time")


def _severity(nbytes: int) -> Severity:
    return severity_by_bytes(nbytes, high_from=HIGH_BYTES)


def find_packages(view: ImageView) -> list[Finding]:
    """Build packages the final package database says are installed, with their files' bytes."""
    findings = []
    for subject, packages in (("dpkg", _dpkg_build_packages(view)),
                              ("apk", _apk_build_packages(view))):
        if not packages:
            continue
        refs = alive_refs(view, (f for files in packages.values() for f in files))
        if not refs:
            continue
        names = sorted(packages)
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        layers = tuple(sorted({r.layer_index for r in refs}))
        findings.append(make_finding(
            rule=PACKAGES_RULE, category=Category.TOOLCHAIN,
            severity=severity_by_bytes(sum(r.bytes for r in refs), high_from=HIGH_BYTES),
            title=f"{len(names)} build package(s) installed ({subject}): {shown}",
            subject=subject, files=refs, removable=True,
            detail=f"packages: {', '.join(names)}; their files were written by "
                   f"{steps_text(view, layers)}",
        ))
    return findings


def _content(view: ImageView, path: str) -> str | None:
    live = view.live_by_path.get(path)
    if live is None or live.entry.content is None:
        return None
    return live.entry.content.decode("utf-8", "replace")


def _present(view: ImageView, listed: Iterable[str]) -> list[LiveFile]:
    """The listed absolute paths that reach content in the final image.

    A path under a top-level directory merged into /usr (`/bin/x`, `/lib/x`) that is absent is
    looked up under /usr as well.
    """
    by_path = view.live_by_path
    present = []
    for line in listed:
        path = line.strip().lstrip("/")
        if not path or path == ".":
            continue
        live = by_path.get(path)
        if live is None and path.partition("/")[0] in MERGED_DIRS:
            live = by_path.get("usr/" + path)
        if live is not None:
            present.append(live)
    return present


def _dpkg_build_packages(view: ImageView) -> dict[str, list[LiveFile]]:
    """Installed build packages (dpkg `Status: … installed`) → their files present."""
    status = _content(view, DPKG_STATUS)
    if status is None:
        return {}
    packages: dict[str, list[LiveFile]] = {}
    for paragraph in re.split(r"\n\s*\n", status):
        fields = _deb_fields(paragraph)
        name = fields.get("package")
        state = fields.get("status", "").split()
        if not name or state[-1:] != ["installed"] or not _DPKG_BUILD.match(name):
            continue
        listed = _content(view, f"{DPKG_INFO}/{name}.list")
        arch = fields.get("architecture")
        if listed is None and arch:
            listed = _content(view, f"{DPKG_INFO}/{name}:{arch}.list")
        packages[name] = _present(view, listed.splitlines()) if listed is not None else []
    return packages


def _deb_fields(paragraph: str) -> dict[str, str]:
    """The single-line fields of a control paragraph, names lower-cased."""
    fields = {}
    for line in paragraph.splitlines():
        if line[:1] in (" ", "\t", "") or ":" not in line:
            continue  # continuation line
        key, _, value = line.partition(":")
        fields[key.strip().lower()] = value.strip()
    return fields


def _apk_build_packages(view: ImageView) -> dict[str, list[LiveFile]]:
    """Build packages in apk's `installed` database → their files present.

    A record is a block of `X:value` lines: `P:` the name, `F:` a directory, `R:` a file in the
    last `F:` directory.
    """
    installed = _content(view, APK_INSTALLED)
    if installed is None:
        return {}
    packages: dict[str, list[LiveFile]] = {}
    for record in re.split(r"\n\s*\n", installed):
        name = ""
        directory = ""
        listed: list[str] = []
        for line in record.splitlines():
            key, _, value = line.partition(":")
            if key == "P":
                name = value.strip()
            elif key == "F":
                directory = value.strip()
            elif key == "R":
                listed.append(f"{directory}/{value.strip()}" if directory else value.strip())
        if name and _APK_BUILD.match(name):
            packages[name] = _present(view, listed)
    return packages

