"""A small client of the OCI distribution API (pull only): manifests and blobs of one
repository, with the auth, TLS, redirect and retry rules of the Docker client.

- Scheme: https, verified against the system trust store plus `--ca-cert`; plain http only
  for a loopback host or one named with `--insecure-registry`, and only when https fails there
  and http answers as a registry.
- Auth: anonymous; `WWW-Authenticate: Bearer` (a token for `repository:REPO:pull` from the
  realm, with Basic credentials when there are some); `Basic`. A 401 on the way asks for a
  token once more, with the scope it names.
- Redirects are followed by hand: a hop to another origin (a blob store) goes without the
  `Authorization` header.
- Connection errors, 5xx and 429 are retried with exponential backoff (`Retry-After`
  honoured), a bounded number of times; a blob cut off mid-stream resumes with `Range`.
- Credentials and tokens never appear in an error or a log line.

urllib3 (already under the Docker SDK) does the HTTP: pooled keep-alive connections,
streaming reads without content decoding, timeouts.
"""

from __future__ import annotations

import contextlib
import email.utils
import io
import ipaddress
import json
import re
import ssl
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC
from typing import TYPE_CHECKING, Any, cast

from imagescope.errors import (
    ImageNotFound,
    MissingBlob,
    RegistryAuthFailed,
    RegistryError,
    RegistryUnreachable,
)
from imagescope.sources.access import RetryPolicy
from imagescope.sources.credentials import Credentials
from imagescope.sources.manifests import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    MAX_DOCUMENT_BYTES,
    OCI_INDEX,
    OCI_MANIFEST,
)
from imagescope.sources.refs import RegistryName

if TYPE_CHECKING:
    import urllib3

ACCEPT = f"{OCI_INDEX}, {DOCKER_MANIFEST_LIST}, {OCI_MANIFEST}, {DOCKER_MANIFEST}"
API_VERSION_HEADER = "Docker-Distribution-API-Version"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_HOPS = 8
_CHUNK = 1 << 20
_ERROR_BODY = 64 << 10  # what is read of an error answer, for its message
_TOKEN_BODY = 1 << 20


@dataclass(frozen=True, slots=True)
class Fetched:
    """One blob or manifest fetched: what, how many bytes, from which origin (and the origin
    it was redirected to, when it was)."""

    what: str
    digest: str
    size: int
    origin: str
    redirected_to: str | None = None

    def line(self) -> str:
        via = f" (redirected to {self.redirected_to})" if self.redirected_to else ""
        return f"fetched {self.what} {self.digest} ({self.size:,} bytes) from {self.origin}{via}"


def plain_http_allowed(host: str, insecure: tuple[str, ...]) -> bool:
    """Whether `host[:port]` may be reached over plain http: a loopback address (as the
    Docker engine allows 127.0.0.0/8), `localhost`, or a host the user named insecure (with
    or without the port)."""
    bare = _without_port(host)
    if host in insecure or bare in insecure or bare == "localhost":
        return True
    try:
        return ipaddress.ip_address(bare).is_loopback
    except ValueError:
        return False


def _without_port(host: str) -> str:
    if host.startswith("["):  # [::1]:5000
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """`Bearer realm="…",service="…"` → ("bearer", {realm, service}); quoted values may hold
    commas."""
    scheme, _, rest = header.strip().partition(" ")
    params = {key.lower(): value.replace('\\"', '"') for key, value in
              re.findall(r'([A-Za-z_]+)\s*=\s*"((?:[^"\\]|\\.)*)"', rest)}
    for key, value in re.findall(r'([A-Za-z_]+)\s*=\s*([^",\s]+)', rest):
        params.setdefault(key.lower(), value)
    return scheme.lower(), params


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """`Retry-After` as seconds from now: a number, or an HTTP date; None when absent or
    unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


@dataclass(slots=True)
class _Auth:
    """What this client sends as `Authorization` to the registry's own origin."""

    header: str | None = None
    renewed: int = 0


@dataclass(slots=True)
class RegistryClient:
    """Pull access to one repository (`name`) of one registry."""

    name: RegistryName
    credentials: Credentials | None
    ca_cert: str | None = None
    insecure: tuple[str, ...] = ()
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] = time.sleep
    fetched: list[Fetched] = field(default_factory=list)
    origin: str = ""
    _pool: Any = None
    _auth: _Auth = field(default_factory=_Auth)

    def __post_init__(self) -> None:
        import urllib3

        context = ssl.create_default_context()
        if self.ca_cert is not None:
            try:
                context.load_verify_locations(cafile=self.ca_cert)
            except (OSError, ssl.SSLError) as exc:
                raise RegistryUnreachable(f"--ca-cert {self.ca_cert}: cannot load it "
                                          f"({exc.__class__.__name__}: {exc})") from None
        self._pool = urllib3.PoolManager(
            num_pools=4, maxsize=8, ssl_context=context, retries=False,
            timeout=urllib3.Timeout(connect=min(self.policy.timeout, 30.0),
                                    read=self.policy.timeout))

    # ---------------------------------------------------------------- the API

    @property
    def where(self) -> str:
        return f"{self.name.host}/{self.name.repository}"

    def connect(self) -> None:
        """Find the scheme the registry answers on and authenticate as its `/v2/` asks."""
        host = self.name.api_host
        https = f"https://{host}"
        try:
            answer = self._send("GET", https + "/v2/", authorize=False)
        except RegistryUnreachable as failure:
            if not plain_http_allowed(host, self.insecure):
                raise
            try:
                answer = self._send("GET", f"http://{host}/v2/", authorize=False)
            except RegistryUnreachable:
                raise failure from None
            if answer.status not in (200, 401) or API_VERSION_HEADER not in answer.headers:
                _discard(answer)
                raise failure from None
            self.origin = f"http://{host}"
        else:
            self.origin = https
        status, challenge = answer.status, answer.headers.get("WWW-Authenticate")
        _discard(answer)
        if status == 401:
            self._authenticate(challenge, None)
        elif status not in (200, 404):  # (some registries answer /v2/ with 404)
            raise self._failure_of(status, "the API root /v2/", b"")

    def manifest(self, reference: str, what: str) -> tuple[bytes, str | None]:
        """The manifest (or index) of a tag or digest, and its Content-Type. 404 is
        ImageNotFound."""
        answer = self._get(f"/v2/{self.name.repository}/manifests/{reference}",
                           {"Accept": ACCEPT})
        return self._document(answer, what, reference, missing=ImageNotFound), \
            answer.headers.get("Content-Type")

    def blob_bytes(self, digest: str, what: str) -> bytes:
        """A small blob (a config) read whole; one over MAX_DOCUMENT_BYTES is a
        RegistryError."""
        answer = self._get(f"/v2/{self.name.repository}/blobs/{digest}", {})
        return self._document(answer, what, digest, missing=MissingBlob)

    def open_blob(self, digest: str, size: int | None, what: str,
                  on_bytes: Callable[[int], None]) -> BlobStream:
        """A layer blob as a stream; see BlobStream."""
        return BlobStream(self, digest, size, what, on_bytes)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.clear()

    # ---------------------------------------------------------------- requests

    def _get(self, path: str, headers: dict[str, str]) -> urllib3.BaseHTTPResponse:
        url = self.origin + path
        answer = self._send("GET", url, headers)
        if answer.status == 401:  # a token for another scope, an expired one: ask once more
            challenge = answer.headers.get("WWW-Authenticate")
            _discard(answer)
            if self._auth.renewed < 2 and challenge:
                self._authenticate(challenge, self._auth.header)
                answer = self._send("GET", url, headers)
        return answer

    def _send(self, method: str, url: str, headers: dict[str, str] | None = None, *,
              authorize: bool = True, authorization: str | None = None
              ) -> urllib3.BaseHTTPResponse:
        """One request, redirects followed and transient failures retried; what comes back
        is the final answer, its body unread (any status but a redirect)."""
        import urllib3

        start = url
        hops = 0
        attempt = 0
        while True:
            sent = dict(headers or {})
            header = authorization or (self._auth.header if authorize else None)
            if header is not None and _origin(url) == _origin(start):
                sent["Authorization"] = header
            try:
                answer = self._pool.request(method, url, headers=sent, redirect=False,
                                            retries=False, preload_content=False,
                                            decode_content=False)
            except urllib3.exceptions.SSLError as exc:
                raise RegistryUnreachable(f"{_origin(url)}: TLS failed ({_reason(exc)}); "
                                          "--ca-cert FILE names a CA to trust") from None
            except urllib3.exceptions.HTTPError as exc:
                if attempt < self.policy.retries:
                    self.sleep(self.policy.wait(attempt, None))
                    attempt += 1
                    continue
                raise RegistryUnreachable(f"{_origin(url)}: {_reason(exc)} (after "
                                          f"{attempt + 1} tries)") from None
            if answer.status in _REDIRECTS and answer.headers.get("Location"):
                location = urllib.parse.urljoin(url, answer.headers["Location"])
                _discard(answer)
                hops += 1
                if hops > _MAX_HOPS or not location.startswith(("https://", "http://")):
                    raise RegistryError(f"{_origin(start)}: too many redirects or a "
                                        "redirect to a non-HTTP location")
                url = location
                continue
            if answer.status == 429 or answer.status >= 500:
                wait = self.policy.wait(attempt, retry_after_seconds(
                    answer.headers.get("Retry-After")))
                status = answer.status
                _discard(answer)
                if attempt < self.policy.retries and wait <= self.policy.longest_wait:
                    self.sleep(wait)
                    attempt += 1
                    continue
                asked = f"; it asks to wait {wait:.0f} s" if wait > self.policy.longest_wait \
                    else ""
                raise RegistryError(f"{_origin(url)}: HTTP {status} after {attempt + 1} "
                                    f"tries{asked}")
            answer.redirected_to = _origin(url) if _origin(url) != _origin(start) else None
            return cast("urllib3.BaseHTTPResponse", answer)

    def _authenticate(self, challenge: str | None, failed: str | None) -> None:
        """Answer a 401's challenge: fetch a bearer token, or send Basic credentials."""
        self._auth.renewed += 1
        scheme, params = parse_challenge(challenge or "")
        if scheme == "basic":
            if self.credentials is None or failed is not None:
                raise self._refused(401)
            self._auth.header = self.credentials.basic()
            return
        if scheme != "bearer" or "realm" not in params:
            raise RegistryError(f"{self.where}: 401 with a challenge imagescope does not know "
                                f"({scheme or 'none'})")
        realm = params["realm"]
        if not realm.startswith(("https://", "http://")):
            raise RegistryError(f"{self.where}: the token realm is not an http(s) URL")
        scope = params.get("scope") or f"repository:{self.name.repository}:pull"
        query = {"scope": scope}
        if "service" in params:
            query["service"] = params["service"]
        url = realm + ("&" if "?" in realm else "?") + urllib.parse.urlencode(query)
        # credentials go to the realm the registry named (as `docker` sends them)
        answer = self._send("GET", url, authorize=False, authorization=(
            self.credentials.basic() if self.credentials is not None else None))
        if answer.status in (401, 403):
            _discard(answer)
            raise self._refused(answer.status, token_service=_origin(realm))
        if answer.status != 200:
            _discard(answer)
            raise RegistryError(f"{self.where}: the token service at {_origin(realm)} "
                                f"answered HTTP {answer.status}")
        body = _read_capped(answer, _TOKEN_BODY)
        try:
            document = json.loads(body) if body is not None else {}
            token = document.get("token") or document.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise RegistryError(f"{self.where}: the token service at {_origin(realm)} "
                                "answered without a token")
        self._auth.header = f"Bearer {token}"

    def _document(self, answer: urllib3.BaseHTTPResponse, what: str, reference: str, *,
                  missing: type[ImageNotFound | MissingBlob],
                  ) -> bytes:
        limit = MAX_DOCUMENT_BYTES
        if answer.status != 200:
            status = answer.status
            body = _read_capped(answer, _ERROR_BODY) or b""
            if status == 404:
                raise missing(f"{self.where}: no {what} {reference} in the registry"
                              f"{_registry_message(body)}")
            raise self._failure_of(status, f"{what} {reference}", body)
        document = _read_capped(answer, limit)
        if document is None:
            raise RegistryError(f"{self.where}: {what} {reference} is over {limit:,} bytes: "
                                "not a manifest or config")
        shown = reference if ":" in reference else f"{self.name.repository}:{reference}"
        self.fetched.append(Fetched(what, shown, len(document), self.origin,
                                    getattr(answer, "redirected_to", None)))
        return document

    def _failure_of(self, status: int, what: str, body: bytes) -> Exception:
        if status in (401, 403):
            return self._refused(status, detail=_registry_message(body))
        return RegistryError(f"{self.where}: HTTP {status} for {what}"
                             f"{_registry_message(body)}")

    def _refused(self, status: int, *, token_service: str | None = None,
                 detail: str = "") -> RegistryAuthFailed:
        by = f"the token service at {token_service}" if token_service else "the registry"
        if self.credentials is None:
            return RegistryAuthFailed(f"{self.where}: {by} refused anonymous access (HTTP "
                                      f"{status}){detail}; give credentials: docker login, "
                                      "--creds or IMAGESCOPE_CREDS")
        return RegistryAuthFailed(f"{self.where}: {by} refused the credentials of "
                                  f"{self.credentials.username!r} from "
                                  f"{self.credentials.origin} (HTTP {status}){detail}")


class BlobStream(io.RawIOBase):
    """A blob read front to back over HTTP, `size` bytes (as the manifest declares them; the
    answer's length when it does not). A connection that breaks or ends early is resumed from
    the byte reached with a `Range` request (or, when the server answers 200, by skipping what
    was read), `policy.retries` times at most."""

    def __init__(self, client: RegistryClient, digest: str, size: int | None, what: str,
                 on_bytes: Callable[[int], None]) -> None:
        super().__init__()
        self._client = client
        self._path = f"/v2/{client.name.repository}/blobs/{digest}"
        self._digest = digest
        self._what = what
        self._on_bytes = on_bytes
        self.position = 0
        self.resumed = 0
        self._answer = self._open(0)
        length = self._answer.headers.get("Content-Length")
        self.size = size if size is not None else (int(length) if length and length.isdigit()
                                                   else None)
        self._redirected = getattr(self._answer, "redirected_to", None)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        import http.client

        import urllib3

        wanted = len(buffer) if self.size is None else min(len(buffer),
                                                          self.size - self.position)
        if wanted <= 0:
            return 0
        target = memoryview(buffer)[:wanted]
        while True:
            try:
                count = self._read_into(target)
            except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as exc:
                self._resume(_reason(exc))
                continue
            if not count and self.size is not None:  # ended before its length
                self._resume("the connection ended early")
                continue
            break
        self.position += count
        self._on_bytes(count)
        return count

    def _read_into(self, target: memoryview) -> int:
        """Bytes of the answer straight into `target`: through http.client's own `readinto`
        (no intermediate bytes object, no copy) when urllib3 has buffered nothing, else
        through urllib3."""
        raw = getattr(self._answer, "_fp", None)
        if raw is not None and hasattr(raw, "readinto") and not getattr(
                self._answer, "_decoded_buffer", None):
            count: int = raw.readinto(target)
            return count
        data = self._answer.read(len(target))
        target[:len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            if self.position > 0:
                self._client.fetched.append(Fetched(
                    self._what, self._digest, self.position, self._client.origin,
                    self._redirected))
            _discard(self._answer)
        super().close()

    def _open(self, offset: int) -> urllib3.BaseHTTPResponse:
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        answer = self._client._get(self._path, headers)
        if answer.status == 200 or answer.status == 206 and offset:
            return answer
        body = _read_capped(answer, _ERROR_BODY) or b""
        where = self._client.where
        if answer.status == 404:
            raise MissingBlob(f"{where}: {self._what} {self._digest} is missing from the "
                              f"registry{_registry_message(body)}")
        raise self._client._failure_of(answer.status, f"{self._what} {self._digest}", body)

    def _resume(self, reason: str) -> None:
        _discard(self._answer)
        if self.resumed >= self._client.policy.retries:
            raise RegistryUnreachable(
                f"{self._client.where}: {self._what} {self._digest[:19]}… cut off at byte "
                f"{self.position:,} ({reason}); gave up after {self.resumed} resumes")
        self._client.sleep(self._client.policy.wait(self.resumed, None))
        self.resumed += 1
        answer = self._open(self.position)
        if answer.status == 206:
            if _range_start(answer.headers.get("Content-Range")) != self.position:
                _discard(answer)
                raise RegistryError(f"{self._client.where}: {self._what} resumed at the wrong "
                                    "offset (Content-Range)")
        else:  # the whole blob again: skip what was read
            skip = self.position
            while skip:
                chunk = answer.read(min(skip, _CHUNK))
                if not chunk:
                    break
                skip -= len(chunk)
        self._answer = answer


def _range_start(header: str | None) -> int | None:
    found = re.fullmatch(r"\s*bytes\s+(\d+)-\d+/(?:\d+|\*)\s*", header or "")
    return int(found.group(1)) if found else None


def _read_capped(answer: urllib3.BaseHTTPResponse, limit: int) -> bytes | None:
    """The whole body, or None when it is longer than `limit` (the rest is not read)."""
    parts: list[bytes] = []
    total = 0
    try:
        for chunk in _chunks(answer):
            total += len(chunk)
            if total > limit:
                return None
            parts.append(chunk)
    finally:
        _discard(answer)
    return b"".join(parts)


def _chunks(answer: urllib3.BaseHTTPResponse) -> Iterator[bytes]:
    import urllib3

    while True:
        try:
            chunk = answer.read(_CHUNK)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise RegistryUnreachable(f"the connection broke ({_reason(exc)})") from None
        if not chunk:
            return
        yield chunk


def _discard(answer: urllib3.BaseHTTPResponse) -> None:
    """Let go of an answer: a short body left unread is read, so that its connection is
    reused; a longer one (a blob given up on) closes the connection instead."""
    with contextlib.suppress(Exception):  # (a broken connection is already let go of)
        length = answer.headers.get("Content-Length", "")
        if length.isdigit() and int(length) <= _ERROR_BODY:
            answer.drain_conn()
        else:
            answer.close()
        answer.release_conn()


def _registry_message(body: bytes) -> str:
    """`: CODE: message` from the distribution API's error document, when there is one."""
    try:
        errors = json.loads(body).get("errors")
        first = errors[0]
        code, message = str(first.get("code", "")), str(first.get("message", ""))
    except (ValueError, AttributeError, IndexError, TypeError, KeyError):
        return ""
    text = " ".join(f"{code}: {message}".split())[:200]
    return f" ({text})" if code or message else ""


def _origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{parts.hostname}:{port}"


def _reason(exc: BaseException) -> str:
    """A short cause, without URLs' query strings (a signed blob URL carries a credential)."""
    inner = exc
    for _ in range(4):
        nested = getattr(inner, "reason", None) or inner.__cause__ or inner.__context__
        if not isinstance(nested, BaseException):
            break
        inner = nested
    text = str(inner) or inner.__class__.__name__
    text = re.sub(r"(https?://[^\s?'\"]+)\?[^\s'\"]*", r"\1?…", text)
    return " ".join(text.split())[:200]


__all__ = ["ACCEPT", "BlobStream", "Fetched", "RegistryClient",
           "parse_challenge", "plain_http_allowed", "retry_after_seconds"]
