"""Secrets alive in the final image and secrets hidden by a later step but still in a layer."""

from __future__ import annotations

import pytest

from imagescope.analysis.findings import secrets
from imagescope.analysis.findings.model import Category, Finding, Severity
from imagescope.layer.capture import should_capture
from imagescope.model import Entry
from tests.stacks import captured, file, view, whiteout

BASE = "/bin/sh -c #(nop) ADD file:0123abcd in / "
COPY = "/bin/sh -c #(nop) COPY dir:feed in /app "
RM = "/bin/sh -c rm /app/id_rsa"

TOKEN = b"isc_fake_token_5d1e"
KEY = (b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAAfake" + TOKEN +
       b"\n-----END OPENSSH PRIVATE KEY-----\n")
RSA_KEY = (b"-----BEGIN RSA PRIVATE KEY-----\nMIIEfake" + TOKEN +
           b"\n-----END RSA PRIVATE KEY-----\n")
CERT = b"-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUfake\n-----END CERTIFICATE-----\n"


def kinds(*entries: Entry) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for finding in secrets.find(view([file("bin/sh", 1)], list(entries), steps=[BASE, COPY])):
        assert finding.rule == "secret"
        found.setdefault(finding.subject, []).extend(r.path for r in finding.files)
    return found


@pytest.mark.parametrize(("entry", "kind"), [
    (captured("app/deploy.pem", KEY), "private-key"),
    (captured("etc/ssl/private/server.key", RSA_KEY), "private-key"),
    (captured("app/config.json", KEY), "private-key"),  # any captured file holding a key block
    (file("root/.ssh/id_rsa", 2600), "private-key"),  # by name, content not needed
    (file("home/app/.ssh/id_ed25519", 400), "private-key"),
    (captured("app/.env", b"API_TOKEN=" + TOKEN + b"\n"), "dotenv"),
    (captured("app/.env.production", b"A=1\n"), "dotenv"),
    (captured("app/prod.env", b"A=1\n"), "dotenv"),
    (captured("root/.npmrc", b"//registry.npmjs.org/:_authToken=" + TOKEN + b"\n"), "npmrc"),
    (captured("app/.npmrc", b"_auth = dXNlcjpwYXNz\nemail=a@b.c\n"), "npmrc"),
    (captured("root/.pypirc", b"[pypi]\nusername = __token__\npassword = " + TOKEN + b"\n"),
     "pypirc"),
    (file("root/.aws/credentials", 116), "cloud-credentials"),
    (file("root/.config/gcloud/application_default_credentials.json", 300),
     "cloud-credentials"),
    (file("root/.config/gcloud/credentials.db", 300), "cloud-credentials"),
    (file("root/.config/gcloud/access_tokens.db", 300), "cloud-credentials"),
    (file("home/a/.azure/accessTokens.json", 300), "cloud-credentials"),
    (captured("root/.docker/config.json", b'{"auths": {"ghcr.io": {"auth": "dXNlcjp0b2tlbg=="}}}'),
     "docker-config"),
    (file("root/.git-credentials", 60), "git-credentials"),
    (file("root/.netrc", 60), "netrc"),
    (file("root/.kube/config", 5000), "kubeconfig"),
])
def test_each_secret_kind(entry: Entry, kind: str) -> None:
    assert kinds(entry) == {kind: ["/" + entry.path]}


@pytest.mark.parametrize("entry", [
    captured("etc/ssl/certs/ca.pem", CERT),  # a public certificate
    captured("app/server.key", CERT),
    file("app/server.key", 1700),  # not captured: a key only when its content says so
    file("root/.ssh/id_rsa.pub", 400),
    file("root/.ssh/known_hosts", 400),
    captured("app/.env.example", b"API_TOKEN=changeme\n"),
    captured("app/.env", b""),  # empty
    captured("home/app/.npmrc", b"registry=https://registry.npmjs.org/\n"),
    captured("app/.npmrc", b"//registry.npmjs.org/:_authToken=${NPM_TOKEN}\n"),
    captured("app/.npmrc", b"# _authToken=old\n  ; password=old\n"),
    captured("root/.pypirc", b"[pypi]\nusername = __token__\n"),
    captured("root/.docker/config.json", b'{"auths": {}, "credsStore": "desktop"}'),
    file("root/.docker/config.json", 90),  # not captured: cannot tell
    captured("usr/lib/python3/dist-packages/pkg/tests/keys/test.pem", KEY),  # test fixture
    captured("usr/local/go/src/crypto/tls/testdata/example-key.pem", KEY),
    captured("app/node_modules/pkg/.env", b"A=1\n"),  # somebody else's package
    file("app/.git/config", 90),
])
def test_not_secrets(entry: Entry) -> None:
    assert kinds(entry) == {}


def test_alive_secret_finding_names_path_kind_and_layer_never_content() -> None:
    # layer 1 (COPY) writes a key (len(KEY) bytes) and a .env (19 bytes); both alive
    env = b"API_TOKEN=" + TOKEN + b"\n"
    v = view([file("bin/sh", 1)], [captured("app/id_rsa", KEY), captured("app/.env", env)],
             steps=[BASE, COPY])
    findings = secrets.find(v)
    assert [(f.rule, f.subject, f.bytes, f.layers) for f in findings] == [
        ("secret", "dotenv", len(env), (1,)), ("secret", "private-key", len(KEY), (1,))]
    for finding in findings:
        assert (finding.category, finding.severity, finding.removable) == (
            Category.SECRET, Severity.HIGH, True)
        assert finding.title.endswith("in the final image, written by layer 1 (COPY)")
        assert [r.hidden_by for r in finding.files] == [None]
        assert_no_content(finding)


def test_secret_deleted_later_is_still_in_its_layer() -> None:
    # COPY (layer 1) writes id_rsa (len(KEY) bytes); RUN rm (layer 2) hides it
    v = view([file("bin/sh", 1)], [captured("app/id_rsa", KEY), file("app/main.py", 9)],
             [whiteout("app/id_rsa")], steps=[BASE, COPY, RM])
    (finding,) = secrets.find(v)
    assert (finding.rule, finding.subject, finding.severity) == (
        "secret-in-lower-layer", "private-key", Severity.HIGH)
    assert finding.removable is False  # deleting it again changes nothing
    assert finding.bytes == len(KEY)
    assert [(r.path, r.bytes, r.layer_index, r.hidden_by) for r in finding.files] == [
        ("/app/id_rsa", len(KEY), 1, 2)]
    assert finding.layers == (1, 2)
    assert finding.title == "private key still in layer 1 (COPY), though layer 2 (RUN) deleted it"
    assert_no_content(finding)


def test_overwritten_secret_is_in_the_lower_layer_and_the_new_one_alive() -> None:
    # layer 0 writes a .npmrc with a token (t1 bytes); layer 1 overwrites it with a new token
    old = b"//r/:_authToken=" + TOKEN + b"\n"
    new = b"//r/:_authToken=" + TOKEN + b"-rotated\n"
    v = view([captured("root/.npmrc", old)], [captured("root/.npmrc", new)])
    assert sorted((f.rule, f.bytes, f.layers) for f in secrets.find(v)) == [
        ("secret", len(new), (1,)), ("secret-in-lower-layer", len(old), (0, 1))]
    lower = [f for f in secrets.find(v) if f.rule == "secret-in-lower-layer"]
    assert lower[0].title == ".npmrc with a registry token still in layer 0, though layer 1 " \
        "overwrote it"  # no history: layers by number


def test_a_step_that_writes_the_secret_is_not_quoted() -> None:
    # the RUN's arguments hold the token: titles and details name its keyword only
    step = "/bin/sh -c echo API_TOKEN=" + TOKEN.decode() + " > /app/.env"
    v = view([file("bin/sh", 1)], [captured("app/.env", b"API_TOKEN=" + TOKEN + b"\n")],
             [whiteout("app/.env")], steps=[BASE, step, RM])
    (finding,) = secrets.find(v)
    assert finding.title == ".env file still in layer 1 (RUN), though layer 2 (RUN) deleted it"
    assert_no_content(finding)


def test_alive_secrets_split_by_the_layer_holding_them() -> None:
    npmrc = b"//r/:_authToken=" + TOKEN + b"\n"
    v = view([captured("app/.npmrc", npmrc)], [captured("root/.npmrc", npmrc)])
    assert [(f.subject, f.layers, f.bytes) for f in secrets.find(v)] == [
        ("npmrc", (0,), len(npmrc)), ("npmrc", (1,), len(npmrc))]


def assert_no_content(finding: Finding) -> None:
    text = finding.title + finding.detail
    assert TOKEN.decode() not in text
    assert "BEGIN" not in text


@pytest.mark.parametrize("path", [
    "app/.env", "app/.env.local", "app/prod.env", "root/.npmrc", "root/.pypirc",
    "root/.docker/config.json", "app/tls.key", "app/tls.pem",
])
def test_files_whose_kind_needs_content_are_captured(path: str) -> None:
    assert should_capture(path, 1000)


def test_every_kind_has_a_label() -> None:
    assert {kind for kind, _ in secrets.SECRET_FILES} == set(secrets.LABELS)
