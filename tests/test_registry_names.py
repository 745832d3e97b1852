"""Registry references, credentials lookup and the HTTP rules of the registry client, tested
without a server: what `docker pull` and the Docker client do with the same input."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from imagescope.errors import ConfigError, RegistryAuthFailed, UsageError
from imagescope.sources.credentials import find_credentials, parse_creds
from imagescope.sources.distribution import (
    parse_challenge,
    plain_http_allowed,
    retry_after_seconds,
)
from imagescope.sources.refs import REGISTRY, RegistryName, SourceRef, parse_ref

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(("text", "host", "repository", "tag", "digest"), [
    ("alpine", "docker.io", "library/alpine", "latest", None),
    ("alpine:3.20", "docker.io", "library/alpine", "3.20", None),
    ("docker.io/alpine", "docker.io", "library/alpine", "latest", None),
    ("index.docker.io/library/alpine:3", "docker.io", "library/alpine", "3", None),
    ("registry-1.docker.io/bitnami/redis:7", "docker.io", "bitnami/redis", "7", None),
    ("bitnami/redis", "docker.io", "bitnami/redis", "latest", None),
    ("ghcr.io/acme/app:1.4", "ghcr.io", "acme/app", "1.4", None),
    ("localhost/app", "localhost", "app", "latest", None),
    ("127.0.0.1:5000/team/app:v2", "127.0.0.1:5000", "team/app", "v2", None),
    (f"reg.example/app@{DIGEST}", "reg.example", "app", None, DIGEST),
    (f"reg.example/app:1@{DIGEST}", "reg.example", "app", "1", DIGEST),
])
def test_registry_names_resolve_as_docker_pull_does(text: str, host: str, repository: str,
                                                    tag: str | None,
                                                    digest: str | None) -> None:
    name = RegistryName.parse(text)
    assert (name.host, name.repository, name.tag, name.digest) == (host, repository, tag,
                                                                   digest)
    assert name.reference == (digest or tag)
    assert name.api_host == ("registry-1.docker.io" if host == "docker.io" else host)
    assert parse_ref(f"docker://{text}") == SourceRef(REGISTRY, str(name))


@pytest.mark.parametrize("text", ["docker://", "docker://UPPER/app", "docker://app:",
                                  "docker://reg.example/app@sha256:12",
                                  "docker://reg.example/a//b"])
def test_malformed_registry_references_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError, match="not a valid registry reference"):
        parse_ref(text)


def test_bare_docker_prefix_is_ambiguous_and_says_both_spellings() -> None:
    with pytest.raises(UsageError) as caught:
        parse_ref("docker:alpine")
    assert "docker://alpine" in str(caught.value)
    assert "docker-daemon:alpine" in str(caught.value)


@pytest.mark.parametrize(("host", "insecure", "allowed"), [
    ("127.0.0.1:5000", (), True),
    ("127.8.9.10", (), True),
    ("[::1]:5000", (), True),
    ("localhost:5000", (), True),
    ("10.0.0.5:5000", (), False),
    ("reg.example", (), False),
    ("reg.example:5000", ("reg.example",), True),
    ("reg.example:5000", ("reg.example:5000",), True),
    ("reg.example:5000", ("reg.example:6000",), False),
    ("localhost.evil.example", (), False),
])
def test_plain_http_only_for_loopback_or_named_hosts(host: str, insecure: tuple[str, ...],
                                                     allowed: bool) -> None:
    assert plain_http_allowed(host, insecure) is allowed


def test_challenges_parse_with_quoted_commas() -> None:
    scheme, params = parse_challenge(
        'Bearer realm="https://auth.example/token",service="reg.example",'
        'scope="repository:a/b:pull,push",error="insufficient_scope"')
    assert scheme == "bearer"
    assert params == {"realm": "https://auth.example/token", "service": "reg.example",
                      "scope": "repository:a/b:pull,push", "error": "insufficient_scope"}
    assert parse_challenge('Basic realm="Registry Realm"') == ("basic",
                                                               {"realm": "Registry Realm"})


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412500.0) == 0.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


def _config(directory: Path, document: dict[str, object]) -> dict[str, str]:
    (directory / "config.json").write_text(json.dumps(document))
    return {"DOCKER_CONFIG": str(directory)}


def _auth(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize("key", ["https://index.docker.io/v1/", "index.docker.io",
                                 "docker.io", "registry-1.docker.io"])
def test_docker_hub_credentials_under_any_of_its_keys(tmp_path: Path, key: str) -> None:
    environ = _config(tmp_path, {"auths": {key: {"auth": _auth("hubuser", "hubpass")}}})
    found = find_credentials("docker.io", environ=environ)
    assert found is not None and (found.username, found.secret) == ("hubuser", "hubpass")


def test_credentials_keys_match_without_scheme_or_path(tmp_path: Path) -> None:
    environ = _config(tmp_path, {"auths": {
        "https://reg.example:5000/v2/": {"auth": _auth("u1", "p1")},
        "other.example": {"username": "u2", "password": "p2"}}})
    first = find_credentials("reg.example:5000", environ=environ)
    second = find_credentials("other.example", environ=environ)
    assert first is not None and (first.username, first.secret) == ("u1", "p1")
    assert second is not None and (second.username, second.secret) == ("u2", "p2")
    assert find_credentials("reg.example", environ=environ) is None  # another port


def test_explicit_credentials_come_first_then_the_environment(tmp_path: Path) -> None:
    environ = _config(tmp_path, {"auths": {"reg.example": {"auth": _auth("file", "f")}}})
    environ["IMAGESCOPE_CREDS"] = "env:e:with:colons"
    explicit = find_credentials("reg.example", "flag:x", environ)
    from_env = find_credentials("reg.example", None, environ)
    assert explicit is not None and (explicit.username, explicit.origin) == ("flag", "--creds")
    assert from_env is not None and (from_env.username, from_env.secret) == ("env",
                                                                              "e:with:colons")


def test_a_malformed_creds_value_is_not_echoed() -> None:
    with pytest.raises(UsageError) as caught:
        parse_creds("no-colon-secret", "--creds")
    assert "no-colon-secret" not in str(caught.value)


def test_a_secret_is_not_in_the_repr() -> None:
    assert "hunter2" not in repr(parse_creds("user:hunter2", "--creds"))


def test_a_missing_helper_is_an_auth_error_naming_it(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    environ = _config(tmp_path, {"credsStore": "nowhere"})
    with pytest.raises(RegistryAuthFailed, match="docker-credential-nowhere"):
        find_credentials("reg.example", environ=environ)


def test_a_broken_docker_config_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="config.json"):
        find_credentials("reg.example", environ={"DOCKER_CONFIG": str(tmp_path)})
