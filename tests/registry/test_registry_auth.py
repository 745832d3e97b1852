"""Auth against real registries: htpasswd (HTTP Basic) and token mode (a Bearer token from the
tests' issuer, RS256-signed with the certificate the registry trusts), with credentials from
--creds, IMAGESCOPE_CREDS, config.json `auths`, `credHelpers` and `credsStore` (helper
scripts on PATH); wrong ones and anonymous access refused, and no secret ever printed."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from imagescope.errors import ExitCode
from tests.cli import CliResult, run_cli
from tests.registry.conftest import PASSWORD, USER, Pushed, TokenRegistry
from tests.registry.servers import Registry, write_credential_helper
from tests.registry.support import one_line_error

pytestmark = pytest.mark.registry

IMAGE = "team/app:1"


def _inspect(address: str, *args: str, env: dict[str, str] | None = None) -> CliResult:
    return run_cli("inspect", f"docker://{address}/{IMAGE}", "--no-cache", "--verbose",
                   *args, env=env)


def _no_secret_in(result: CliResult, *secrets: str) -> None:
    for secret in (PASSWORD, *secrets):
        assert secret not in result.stdout and secret not in result.stderr


@pytest.fixture(params=["htpasswd", "token"])
def guarded(request: pytest.FixtureRequest, pushed: Pushed) -> Registry:
    """A registry that refuses anonymous pulls."""
    if request.param == "htpasswd":
        registry: Registry = request.getfixturevalue("htpasswd")
        return registry
    token: TokenRegistry = request.getfixturevalue("token")
    return token.registry


def test_anonymous_access_is_refused_with_a_hint(guarded: Registry) -> None:
    result = _inspect(guarded.address)
    assert result.exit_code == ExitCode.REGISTRY_AUTH
    line = one_line_error(result)
    assert "team/app" in line and "anonymous" in line and "--creds" in line


def test_creds_flag(guarded: Registry) -> None:
    result = _inspect(guarded.address, "--creds", f"{USER}:{PASSWORD}")
    assert result.exit_code == 0, result.stderr
    _no_secret_in(result)


def test_wrong_credentials_are_refused_without_echoing_them(guarded: Registry) -> None:
    result = _inspect(guarded.address, "--creds", f"{USER}:not-the-password")
    assert result.exit_code == ExitCode.REGISTRY_AUTH
    line = one_line_error(result)
    assert repr(USER) in line and "--creds" in line
    _no_secret_in(result, "not-the-password")


def test_environment_variable(guarded: Registry) -> None:
    result = _inspect(guarded.address, env={"IMAGESCOPE_CREDS": f"{USER}:{PASSWORD}"})
    assert result.exit_code == 0, result.stderr


def test_docker_config_auths(guarded: Registry, no_engine_no_login: Path) -> None:
    encoded = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    (no_engine_no_login / "config.json").write_text(json.dumps(
        {"auths": {f"http://{guarded.address}": {"auth": encoded}}}))
    result = _inspect(guarded.address)
    assert result.exit_code == 0, result.stderr
    _no_secret_in(result)


@pytest.mark.parametrize("entry", ["credHelpers", "credsStore"])
def test_credential_helpers(guarded: Registry, no_engine_no_login: Path, tmp_path: Path,
                            monkeypatch: pytest.MonkeyPatch, entry: str) -> None:
    log = tmp_path / "helper.log"
    write_credential_helper(tmp_path / "bin", "imagescope-test",
                            {guarded.address: (USER, PASSWORD)}, log)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    config = ({"credHelpers": {guarded.address: "imagescope-test"}} if entry == "credHelpers"
              else {"credsStore": "imagescope-test"})
    (no_engine_no_login / "config.json").write_text(json.dumps(config))
    result = _inspect(guarded.address)
    assert result.exit_code == 0, result.stderr
    assert log.read_text() == f"get {guarded.address}\n"
    _no_secret_in(result)


def test_a_helper_without_the_host_leaves_access_anonymous(guarded: Registry,
                                                           no_engine_no_login: Path,
                                                           tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    write_credential_helper(tmp_path / "bin", "imagescope-test", {}, tmp_path / "log")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    (no_engine_no_login / "config.json").write_text(json.dumps(
        {"credsStore": "imagescope-test"}))
    result = _inspect(guarded.address)
    assert result.exit_code == ExitCode.REGISTRY_AUTH
    assert "anonymous" in one_line_error(result)


def test_token_flow_asks_for_a_pull_scope_and_never_prints_the_token(
        token: TokenRegistry, pushed: Pushed) -> None:
    before = len(token.issuer.requests)
    result = _inspect(token.registry.address, "--creds", f"{USER}:{PASSWORD}")
    assert result.exit_code == 0, result.stderr
    asked = token.issuer.requests[before:]
    assert asked == [(USER, "repository:team/app:pull")]  # one token for the whole read
    _no_secret_in(result, token.issuer.tokens[-1], token.issuer.tokens[-1][:40])


def test_anonymous_token_when_the_issuer_gives_one(token: TokenRegistry,
                                                   pushed: Pushed) -> None:
    token.issuer.anonymous_pull = True
    try:
        result = _inspect(token.registry.address)
    finally:
        token.issuer.anonymous_pull = False
    assert result.exit_code == 0, result.stderr
    assert token.issuer.requests[-1] == (None, "repository:team/app:pull")
