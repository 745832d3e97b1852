"""Real servers for the registry tests: Debian's `docker-registry` (distribution v2) on
loopback in plain, htpasswd, token and TLS mode over one storage directory; the token issuer
its token mode trusts; a fault-injecting proxy; and the upload code that pushes test images.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

REGISTRY_PROGRAM = "docker-registry"
REQUIRE_VARIABLE = "IMAGESCOPE_REQUIRE_REGISTRY"
MANIFEST_TYPES = {
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
}


def registry_unavailable(reason: str) -> None:
    """Skip (locally) or fail (in CI, where IMAGESCOPE_REQUIRE_REGISTRY=1) for `reason`."""
    if os.environ.get(REQUIRE_VARIABLE) == "1":
        pytest.fail(f"registry tests are mandatory here ({REQUIRE_VARIABLE}=1): {reason}",
                    pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --------------------------------------------------------------------------- docker-registry


@dataclass
class Registry:
    """A running docker-registry: `address` is host:port, `url` its origin."""

    address: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_registry(directory: Path, storage: Path, *, name: str, auth: str = "",
                   tls: tuple[Path, Path] | None = None) -> Registry:
    """docker-registry serving `storage` on a free loopback port; `auth` is a YAML `auth:`
    block (indented two spaces), `tls` a (certificate, key) pair."""
    if shutil.which(REGISTRY_PROGRAM) is None:
        registry_unavailable(f"{REGISTRY_PROGRAM} is not installed (apt-get install "
                             "docker-registry)")
    directory.mkdir(parents=True, exist_ok=True)
    for _ in range(5):
        port = free_port()
        tls_block = (f"  tls:\n    certificate: {tls[0]}\n    key: {tls[1]}\n" if tls else "")
        config = directory / f"{name}.yml"
        config.write_text(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {storage}\n"
            "  delete:\n    enabled: true\n"
            f"http:\n  addr: 127.0.0.1:{port}\n  secret: imagescope-tests\n{tls_block}"
            + (f"auth:\n{auth}" if auth else ""))
        log = directory / f"{name}.log"
        process = subprocess.Popen([REGISTRY_PROGRAM, "serve", str(config)],
                                   stdin=subprocess.DEVNULL, stdout=log.open("wb"),
                                   stderr=subprocess.STDOUT)
        scheme = "https" if tls else "http"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return Registry(f"127.0.0.1:{port}", f"{scheme}://127.0.0.1:{port}",
                                    process, log)
            except OSError:
                time.sleep(0.05)
        process.kill()
        process.wait()
        if "address already in use" not in log.read_text(errors="replace"):
            registry_unavailable(f"{REGISTRY_PROGRAM} did not start: "
                                 f"{log.read_text(errors='replace')[-500:]}")
    registry_unavailable(f"{REGISTRY_PROGRAM} found no free port")
    raise AssertionError  # (unreachable)


def htpasswd_line(user: str, password: str) -> str:
    import bcrypt

    return f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()}\n"


# --------------------------------------------------------------------------- certificates


@dataclass(frozen=True)
class KeyPair:
    certificate: Path
    key: Path
    private_key: Any  # cryptography's RSAPrivateKey
    der: bytes


def make_certificate(directory: Path, name: str, *, ip: str | None = "127.0.0.1") -> KeyPair:
    """A self-signed RSA certificate (a CA, and valid for `ip` as a server)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"imagescope test {name}")])
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True))
    if ip is not None:
        import ipaddress

        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]),
            critical=False)
    certificate = builder.sign(key, hashes.SHA256())
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))
    return KeyPair(cert_path, key_path, key,
                   certificate.public_bytes(serialization.Encoding.DER))


# --------------------------------------------------------------------------- HTTP servers


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Run `handler` on a free loopback port; yields its origin."""
    server = _Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class TokenIssuer:
    """The token service of a registry in `auth: token:` mode: RS256 JWTs carrying the signing
    certificate in `x5c` (the registry trusts it through its `rootcertbundle`).

    `users` maps a user to a password; anonymous requests get a pull token only when
    `anonymous_pull`. `requests` records (user or None, scope) per token request."""

    keys: KeyPair
    service: str = "imagescope-test-registry"
    issuer: str = "imagescope-test-issuer"
    users: dict[str, str] = field(default_factory=dict)
    anonymous_pull: bool = False
    requests: list[tuple[str | None, str]] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)

    def token(self, subject: str, access: list[dict[str, Any]]) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256",
                  "x5c": [base64.b64encode(self.keys.der).decode()]}
        claims = {"iss": self.issuer, "sub": subject, "aud": self.service, "exp": now + 300,
                  "nbf": now - 60, "iat": now, "jti": uuid.uuid4().hex, "access": access}
        signing_input = f"{_b64url(json.dumps(header))}.{_b64url(json.dumps(claims))}"
        signature = self.keys.private_key.sign(signing_input.encode(), padding.PKCS1v15(),
                                               hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"

    def handler(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                scope = query.get("scope", [""])[0]
                user = _basic_user(self.headers.get("Authorization"), issuer.users)
                issuer.requests.append((user if user else None, scope))
                if user is False or (user is None and not issuer.anonymous_pull):
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                kind, _, rest = scope.partition(":")
                repository, _, actions = rest.rpartition(":")
                granted = actions.split(",") if user else ["pull"]
                token = issuer.token(user or "", [{"type": kind, "name": repository,
                                                   "actions": granted}])
                issuer.tokens.append(token)
                body = json.dumps({"token": token, "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


def _basic_user(header: str | None, users: dict[str, str]) -> str | None | bool:
    """The user a Basic header names when its password is right; None without a header;
    False for wrong credentials."""
    if not header:
        return None
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    user, _, password = base64.b64decode(encoded).decode().partition(":")
    return user if users.get(user) == password else False


def _b64url(data: str | bytes) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


# --------------------------------------------------------------------------- fault proxy


@dataclass
class Fault:
    """What the proxy does to the first `times` requests whose path contains `path_part`:
    `status` (answer that, with `headers`), `cut` (send the head and half the body, then
    drop the connection), `corrupt` (flip one byte of the body), `redirect` (307 to the same
    path on `to`), `no-range` (forward without the Range header: a server that ignores it)."""

    path_part: str
    action: str
    times: int = 1
    status: int = 503
    headers: dict[str, str] = field(default_factory=dict)
    to: str = ""
    done: int = 0


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    status: int = 0


@dataclass
class Proxy:
    """A loopback HTTP proxy in front of `upstream` that injects `faults` and records what it
    saw."""

    upstream: str
    faults: list[Fault] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fault_for(self, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.path_part in path and fault.done < fault.times:
                    fault.done += 1
                    return fault
        return None

    def handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self
        upstream = urllib.parse.urlsplit(self.upstream)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                seen = Seen("GET", self.path, dict(self.headers.items()))
                proxy.seen.append(seen)
                fault = proxy.fault_for(self.path)
                if fault is not None and fault.action == "status":
                    seen.status = fault.status
                    self.send_response(fault.status)
                    for key, value in fault.headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if fault is not None and fault.action == "redirect":
                    seen.status = 307
                    self.send_response(307)
                    self.send_header("Location", fault.to + self.path)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                connection = http.client.HTTPConnection(upstream.hostname, upstream.port,
                                                        timeout=30)
                dropped = ("host", "connection") + (
                    ("range",) if fault is not None and fault.action == "no-range" else ())
                headers = {k: v for k, v in self.headers.items() if k.lower() not in dropped}
                connection.request("GET", self.path, headers=headers)
                answer = connection.getresponse()
                body = answer.read()
                seen.status = answer.status
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in ("connection", "transfer-encoding", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                connection.close()
                if fault is not None and fault.action == "cut" and len(body) > 1:
                    self.wfile.write(body[:len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if fault is not None and fault.action == "corrupt" and body:
                    middle = len(body) // 2
                    body = body[:middle] + bytes([body[middle] ^ 0xFF]) + body[middle + 1:]
                self.wfile.write(body)

        return Handler


# --------------------------------------------------------------------------- pushing


def push_layout(origin: str, repository: str, tag: str, members: Sequence[Any]) -> str:
    """Push the blobs and manifests of an OCI layout (imagegen members) to a registry that
    allows anonymous pushes, and tag what index.json lists (its one manifest, or the index
    itself when it lists several). Returns the digest tagged."""
    files = {member.name: member.data for member in members}
    index = json.loads(files["index.json"])
    manifests: dict[str, tuple[bytes, str]] = {}
    for name, data in files.items():
        if not name.startswith("blobs/"):
            continue
        digest = "sha256:" + name.rsplit("/", 1)[1]
        media_type = _manifest_type(data)
        if media_type is not None:
            manifests[digest] = (data, media_type)
        else:
            push_blob(origin, repository, data)
    pending = dict(manifests)
    while pending:  # children before the indexes that list them
        for digest, (data, media_type) in list(pending.items()):
            children = {d["digest"] for d in json.loads(data).get("manifests", [])}
            if children & set(pending):
                continue
            put_manifest(origin, repository, digest, data, media_type)
            del pending[digest]
    listed = index["manifests"]
    if len(listed) == 1:
        digest = listed[0]["digest"]
        data, media_type = manifests[digest]
    else:
        data = files["index.json"]
        media_type = "application/vnd.oci.image.index.v1+json"
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
    put_manifest(origin, repository, tag, data, media_type)
    return digest


def _manifest_type(data: bytes) -> str | None:
    if not data.startswith(b"{"):
        return None
    try:
        media_type = json.loads(data).get("mediaType")
    except ValueError:
        return None
    return media_type if media_type in MANIFEST_TYPES else None


def push_blob(origin: str, repository: str, data: bytes) -> str:
    """Monolithic upload: POST an upload session, PUT the bytes with their digest."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    started = _request("POST", f"{origin}/v2/{repository}/blobs/uploads/", b"", {})
    location = urllib.parse.urljoin(origin, started.headers["Location"])
    joiner = "&" if "?" in location else "?"
    _request("PUT", f"{location}{joiner}digest={digest}", data,
             {"Content-Type": "application/octet-stream"})
    return digest


def put_manifest(origin: str, repository: str, reference: str, data: bytes,
                 media_type: str) -> None:
    _request("PUT", f"{origin}/v2/{repository}/manifests/{reference}", data,
             {"Content-Type": media_type})


def _request(method: str, url: str, data: bytes, headers: dict[str, str]) -> Any:
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=60) as answer:
        answer.read()
        return answer


def write_credential_helper(directory: Path, name: str, answers: dict[str, tuple[str, str]],
                            log: Path) -> Path:
    """A `docker-credential-NAME` script answering `get` for the servers in `answers`
    (server → (user, secret)) as the helper protocol says, logging each server asked."""
    directory.mkdir(parents=True, exist_ok=True)
    table = json.dumps({server: {"ServerURL": server, "Username": user, "Secret": secret}
                        for server, (user, secret) in answers.items()})
    script = directory / f"docker-credential-{name}"
    script.write_text(f"""#!{_python()}
import json, sys
table = json.loads({table!r})
server = sys.stdin.read().strip()
with open({str(log)!r}, "a") as log:
    log.write(sys.argv[1] + " " + server + "\\n")
if sys.argv[1] != "get":
    sys.exit(1)
if server not in table:
    print("credentials not found in native keychain")
    sys.exit(1)
print(json.dumps(table[server]))
""")
    script.chmod(0o755)
    return script


def _python() -> str:
    import sys

    return sys.executable


