"""Every rule family is registered and `run` orders their findings."""

from __future__ import annotations

from imagescope.analysis.findings import (
    caches,
    config,
    context,
    docs,
    hidden,
    rules,
    run,
    secrets,
    toolchain,
)
from imagescope.analysis.findings.model import Severity
from tests.stacks import captured, file, view, whiteout

BASE = "/bin/sh -c #(nop) ADD file:0123abcd in / "
RUN = "/bin/sh -c apt-get update && apt-get install -y gcc-12"
COPY = "/bin/sh -c #(nop) COPY dir:feed in /app "
CLEAN = "/bin/sh -c rm /app/.env"


def test_every_family_is_registered() -> None:
    assert set(rules()) == {hidden.find, caches.find, toolchain.find, context.find, secrets.find,
                          docs.find, config.find}


def test_run_reports_every_rule_most_severe_first() -> None:
    v = view([file("bin/sh", 10)],
             [file("var/lib/apt/lists/x", 500), file("usr/bin/gcc-12", 4000),
              file("usr/share/doc/gcc-12/README", 20)],
             [file("app/main.py", 5), file("app/.git/HEAD", 21),
              captured("app/.env", b"TOKEN=fake\n")],
             [whiteout("app/.env")],
             steps=[BASE, RUN, COPY, CLEAN])
    found = run(v)
    assert [(f.rule, f.subject, f.bytes) for f in found] == [
        ("secret-in-lower-layer", "dotenv", 11),
        ("toolchain-files", "compilers", 4000),
        ("package-cache", "apt-lists", 500),
        ("build-context", "git", 21),
        ("root-user", "root", 0),
        ("docs", "doc", 20),
        ("hidden-waste", "2->3", 11),
    ]
    assert found[0].severity is Severity.HIGH
