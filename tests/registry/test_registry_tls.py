"""TLS against a real registry serving a certificate of the tests' own CA: refused without
--ca-cert (a loopback registry is tried over plain http only when it answers there as a
registry: this one does not), read over https with it, from the flag or the config file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imagescope.errors import ExitCode
from tests.cli import run_cli
from tests.registry.conftest import Pushed
from tests.registry.servers import KeyPair, Registry
from tests.registry.support import figures, inspect_json, one_line_error

pytestmark = pytest.mark.registry


def test_an_unknown_ca_is_refused_with_a_hint(tls: Registry, pushed: Pushed) -> None:
    result = run_cli("inspect", f"docker://{tls.address}/team/app:1")
    assert result.exit_code == ExitCode.REGISTRY_UNREACHABLE
    line = one_line_error(result)
    assert "TLS" in line and "certificate verify failed" in line and "--ca-cert" in line


def test_ca_cert_flag(tls: Registry, pushed: Pushed, ca: KeyPair) -> None:
    result = run_cli("inspect", f"docker://{tls.address}/team/app:1", "--ca-cert",
                     str(ca.certificate), "--verbose", "--no-cache")
    assert result.exit_code == 0, result.stderr
    assert f"from https://{tls.address}" in result.stderr


def test_ca_cert_in_the_config_file(tls: Registry, pushed: Pushed, ca: KeyPair,
                                    tmp_path: Path) -> None:
    (tmp_path / ".imagescope.toml").write_text(f'ca-cert = "{ca.certificate}"\n')
    result = run_cli("inspect", f"docker://{tls.address}/team/app:1", "--format", "json",
                     cwd=tmp_path)
    assert result.exit_code == 0, result.stderr
    assert figures(json.loads(result.stdout)) == figures(
        inspect_json(f"oci:{pushed.layouts['team/app:1']}"))


def test_a_ca_file_that_is_not_one(tls: Registry, tmp_path: Path) -> None:
    bogus = tmp_path / "ca.pem"
    bogus.write_text("not a certificate\n")
    result = run_cli("inspect", f"docker://{tls.address}/team/app:1", "--ca-cert", str(bogus))
    assert result.exit_code == ExitCode.REGISTRY_UNREACHABLE
    assert "--ca-cert" in one_line_error(result)
