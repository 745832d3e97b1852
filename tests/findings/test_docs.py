"""Documentation, man and info pages, and locales alive in the final image."""

from __future__ import annotations

import pytest

from imagescope.analysis.findings import docs
from imagescope.analysis.findings.model import Category, Severity
from tests.stacks import file, view, whiteout


@pytest.mark.parametrize(("path", "subject"), [
    ("usr/share/doc/curl/changelog.Debian.gz", "doc"),
    ("usr/share/doc/curl/copyright", "doc"),
    ("usr/local/share/doc/x/README", "doc"),
    ("usr/share/man/man1/curl.1.gz", "man"),
    ("usr/share/man/de/man1/ls.1.gz", "man"),
    ("usr/share/info/make.info.gz", "info"),
    ("usr/share/locale/de/LC_MESSAGES/make.mo", "locale"),
    ("usr/lib/locale/locale-archive", "locale"),
    ("usr/lib/locale/de_DE.utf8/LC_CTYPE", "locale"),
])
def test_each_kind(path: str, subject: str) -> None:
    (finding,) = docs.find(view([file(path, 64)]))
    assert (finding.rule, finding.category, finding.subject, finding.severity) == (
        "docs", Category.DOCS, subject, Severity.LOW)
    assert (finding.bytes, finding.removable) == (64, True)


@pytest.mark.parametrize("path", [
    "usr/lib/locale/C.utf8/LC_CTYPE",  # the locale programs fall back to
    "usr/lib/locale/C.UTF-8/LC_CTYPE",
    "usr/share/docs/x",
    "usr/share/zoneinfo/UTC",
    "app/docs/index.md",
])
def test_not_docs(path: str) -> None:
    assert docs.find(view([file(path, 64)])) == []


def test_bytes_per_kind_alive_only() -> None:
    # doc: 100 + 50 − the 50 removed later = 100; man: 30; C.utf8 (999) kept out of locale: 7
    v = view([file("usr/share/doc/a/README", 100), file("usr/share/doc/b/README", 50),
              file("usr/share/man/man1/a.1.gz", 30), file("usr/lib/locale/C.utf8/LC_ALL", 999),
              file("usr/share/locale/fr/LC_MESSAGES/a.mo", 7)],
             [whiteout("usr/share/doc/b")])
    assert {f.subject: (f.bytes, len(f.files)) for f in docs.find(v)} == {
        "doc": (100, 1), "man": (30, 1), "locale": (7, 1)}
