"""Registry credentials, found where `docker login` and CI put them.

Precedence: `--creds USER:PASS`, then `IMAGESCOPE_CREDS`, then the Docker client's config
(`$DOCKER_CONFIG/config.json`, default `~/.docker/config.json`): the host's `credHelpers`
entry, else `credsStore`, else its `auths` entry. Docker Hub is filed under
`https://index.docker.io/v1/`; other hosts under `host[:port]`, with or without a scheme or path.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imagescope.errors import ConfigError, RegistryAuthFailed, UsageError

CREDS_VARIABLE = "IMAGESCOPE_CREDS"
DOCKER_HUB_KEY = "https://index.docker.io/v1/"
_HUB_NAMES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
_HELPER_SECONDS = 30


@dataclass(frozen=True, slots=True)
class Credentials:
    """A user name and its secret (a password or token); `origin` says where they were found."""

    username: str
    secret: str = field(repr=False)
    origin: str

    def basic(self) -> str:
        """The `Authorization` header value of HTTP Basic."""
        pair = f"{self.username}:{self.secret}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")


def parse_creds(text: str, origin: str) -> Credentials:
    """`USER:PASS` (the password may hold `:`); anything else is a UsageError that does not
    repeat the text (it may be a secret)."""
    username, colon, secret = text.partition(":")
    if not colon or not username:
        raise UsageError(f"{origin}: expected USER:PASSWORD")
    return Credentials(username, secret, origin)


def find_credentials(host: str, explicit: str | None = None,
                     environ: Mapping[str, str] | None = None) -> Credentials | None:
    """The credentials for registry `host` (as written in the image name: `docker.io` for
    Docker Hub), or None for anonymous access."""
    environ = os.environ if environ is None else environ
    if explicit is not None:
        return parse_creds(explicit, "--creds")
    if environ.get(CREDS_VARIABLE):
        return parse_creds(environ[CREDS_VARIABLE], CREDS_VARIABLE)
    path = docker_config_path(environ)
    config = _load_config(path)
    if not config:
        return None
    key = _server_key(host)
    helpers = config.get("credHelpers")
    helper = _lookup(helpers, host) if isinstance(helpers, dict) else None
    if isinstance(helper, str) and helper:
        return _from_helper(helper, key, path)
    store = config.get("credsStore")
    if isinstance(store, str) and store:
        found = _from_helper(store, key, path)
        if found is not None:
            return found
    auths = config.get("auths")
    entry = _lookup(auths, host) if isinstance(auths, dict) else None
    return _from_auths_entry(entry, path) if isinstance(entry, dict) else None


def docker_config_path(environ: Mapping[str, str]) -> Path:
    """Where the Docker client keeps config.json."""
    directory = environ.get("DOCKER_CONFIG")
    return Path(directory) / "config.json" if directory else Path.home() / ".docker/config.json"


def _load_config(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            loaded = json.load(handle)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read the Docker client config "
                          f"({exc.__class__.__name__})") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: the Docker client config is not a JSON object")
    return loaded


def _server_key(host: str) -> str:
    """What a credential helper is asked for."""
    return DOCKER_HUB_KEY if host in _HUB_NAMES else host


def _normalized(key: str) -> str:
    """A config key as a host: scheme and path stripped; Docker Hub's spellings as one."""
    bare = key.split("://", 1)[-1].split("/", 1)[0]
    return "docker.io" if bare in _HUB_NAMES else bare


def _lookup(table: dict[str, Any], host: str) -> Any:
    wanted = _normalized(host)
    exact = table.get(host)
    if exact is not None:
        return exact
    return next((value for key, value in table.items()
                 if isinstance(key, str) and _normalized(key) == wanted), None)


def _from_auths_entry(entry: dict[str, Any], path: Path) -> Credentials | None:
    encoded = entry.get("auth")
    if isinstance(encoded, str) and encoded:
        try:
            decoded = base64.b64decode(encoded, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise ConfigError(f"{path}: an `auths` entry is not base64 of USER:PASSWORD") \
                from None
        return parse_creds(decoded, f"{path} (auths)")
    username, password = entry.get("username"), entry.get("password")
    if isinstance(username, str) and isinstance(password, str) and username:
        return Credentials(username, password, f"{path} (auths)")
    return None


def _from_helper(name: str, server: str, path: Path) -> Credentials | None:
    """Ask `docker-credential-NAME get`; None when it has nothing for `server`."""
    program = f"docker-credential-{name}"
    try:
        done = subprocess.run([program, "get"], input=server.encode(), capture_output=True,
                              timeout=_HELPER_SECONDS, check=False)
    except FileNotFoundError:
        raise RegistryAuthFailed(f"{program} (named by {path}) is not on PATH") from None
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RegistryAuthFailed(f"{program} failed ({exc.__class__.__name__})") from None
    if done.returncode != 0:
        said = done.stdout.decode(errors="replace").strip()
        if "credentials not found" in said.lower():
            return None
        # (what a helper prints on failure is its own message, never the secret)
        raise RegistryAuthFailed(f"{program} get failed (exit {done.returncode}): "
                                 f"{said[:200] or 'no message'}")
    try:
        answer = json.loads(done.stdout)
        username, secret = answer["Username"], answer["Secret"]
    except (ValueError, KeyError, TypeError):
        raise RegistryAuthFailed(f"{program} get answered something other than "
                                 "{Username, Secret} JSON") from None
    if not isinstance(username, str) or not isinstance(secret, str) or not username:
        return None
    return Credentials(username, secret, program)


__all__ = ["CREDS_VARIABLE", "Credentials", "docker_config_path", "find_credentials",
           "parse_creds"]
