"""Faults between imagescope and a real registry, injected by a loopback proxy: 5xx and 429
retried (Retry-After honoured), a blob cut off mid-stream resumed (with Range, or from the
start when the server ignores it), wrong bytes refused with nothing cached, a redirect to
another origin followed without the Authorization header, an unreachable registry."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from imagescope import api
from imagescope.errors import ExitCode, RegistryError, RegistryUnreachable
from imagescope.sources.access import RegistryAccess, RetryPolicy
from tests.cli import run_cli
from tests.registry.conftest import PASSWORD, USER, Pushed
from tests.registry.servers import Fault, Proxy, Registry, free_port, serving
from tests.registry.support import fetched_layers, figures, inspect_json, one_line_error

pytestmark = pytest.mark.registry

IMAGE = "team/app:1"
FAST = RegistryAccess(policy=RetryPolicy(retries=2, backoff=0.01))


@pytest.fixture
def proxy(plain: Registry, pushed: Pushed) -> Iterator[tuple[Proxy, str]]:
    """A fault proxy in front of the plain registry, and its host:port."""
    faulty = Proxy(plain.url)
    with serving(faulty.handler()) as origin:
        yield faulty, origin.removeprefix("http://")


def _layer_digests(pushed: Pushed) -> list[str]:
    layout = pushed.layouts[IMAGE]
    index = json.loads((layout / "index.json").read_text())
    digest = index["manifests"][0]["digest"].split(":")[1]
    manifest = json.loads((layout / "blobs/sha256" / digest).read_text())
    return [layer["digest"] for layer in manifest["layers"]]


def test_server_errors_then_success(proxy: tuple[Proxy, str], pushed: Pushed) -> None:
    faulty, address = proxy
    faulty.faults = [Fault("/manifests/", "status", times=1, status=500),
                     Fault("/blobs/", "status", times=2, status=503)]
    report = inspect_json(f"docker://{address}/{IMAGE}", "--no-cache")
    assert figures(report) == figures(inspect_json(f"oci:{pushed.layouts[IMAGE]}"))
    assert [s.status for s in faulty.seen if "/manifests/" in s.path] == [500, 200]


def test_too_many_requests_waits_as_asked(proxy: tuple[Proxy, str], pushed: Pushed) -> None:
    faulty, address = proxy
    layer = _layer_digests(pushed)[1]
    faulty.faults = [Fault(layer, "status", status=429, headers={"Retry-After": "1"})]
    began = time.monotonic()
    result = run_cli("inspect", f"docker://{address}/{IMAGE}", "--no-cache")
    assert result.exit_code == 0, result.stderr
    assert time.monotonic() - began >= 1.0
    asked = [s for s in faulty.seen if layer in s.path]
    assert [s.status for s in asked] == [429, 200]


@pytest.mark.parametrize("server_ranges", [True, False])
def test_a_blob_cut_off_is_resumed(proxy: tuple[Proxy, str], pushed: Pushed,
                                   server_ranges: bool) -> None:
    faulty, address = proxy
    layer = _layer_digests(pushed)[0]  # 300 kB
    faulty.faults = [Fault(layer, "cut")]
    if not server_ranges:
        faulty.faults.append(Fault(layer, "no-range"))
    result = run_cli("inspect", f"docker://{address}/{IMAGE}", "--no-cache", "--format",
                     "json", "--verbose")
    assert result.exit_code == 0, result.stderr
    assert figures(json.loads(result.stdout)) == figures(
        inspect_json(f"oci:{pushed.layouts[IMAGE]}"))
    asked = [s for s in faulty.seen if layer in s.path]
    assert len(asked) == 2 and "Range" not in asked[0].headers
    assert asked[1].headers["Range"].startswith("bytes=") and asked[1].headers["Range"] != \
        "bytes=0-"
    assert asked[1].status == (206 if server_ranges else 200)
    assert fetched_layers(result).count(layer) == 1


def test_wrong_bytes_are_refused_and_nothing_is_cached(proxy: tuple[Proxy, str],
                                                       pushed: Pushed) -> None:
    faulty, address = proxy
    bottom = _layer_digests(pushed)[0]
    faulty.faults = [Fault(bottom, "corrupt")]
    result = run_cli("inspect", f"docker://{address}/{IMAGE}")
    assert result.exit_code == ExitCode.DIGEST_MISMATCH
    assert "does not match its digest" in one_line_error(result)
    again = run_cli("inspect", f"docker://{address}/{IMAGE}", "--stats")
    assert again.exit_code == 0
    assert "layers: 4 read, 0 from cache" in again.stderr


def test_a_redirect_to_another_origin_drops_the_authorization(
        htpasswd: Registry, plain: Registry, pushed: Pushed) -> None:
    store = Proxy(plain.url)  # the "blob store": another origin, serving the same storage
    front = Proxy(htpasswd.url)
    with serving(store.handler()) as store_origin, serving(front.handler()) as front_origin:
        front.faults = [Fault("/blobs/", "redirect", times=100, to=store_origin)]
        result = run_cli("inspect", f"docker://{front_origin.removeprefix('http://')}/{IMAGE}",
                         "--no-cache", "--creds", f"{USER}:{PASSWORD}", "--verbose")
    assert result.exit_code == 0, result.stderr
    assert [s for s in front.seen if "/blobs/" in s.path] and store.seen
    assert all("Authorization" in s.headers for s in front.seen if s.path != "/v2/")
    assert not [s for s in store.seen if "Authorization" in s.headers]
    assert f"redirected to {store_origin}" in result.stderr.replace("localhost", "127.0.0.1")


def test_endless_server_errors_give_up_with_the_status(proxy: tuple[Proxy, str]) -> None:
    faulty, address = proxy
    faulty.faults = [Fault("/manifests/", "status", times=100, status=503)]
    with pytest.raises(RegistryError) as caught:
        api.inspect(f"docker://{address}/{IMAGE}", registry=FAST)
    assert "HTTP 503 after 3 tries" in str(caught.value)
    assert caught.value.exit_code == ExitCode.REGISTRY_ERROR


def test_a_long_retry_after_is_not_waited_for(proxy: tuple[Proxy, str]) -> None:
    faulty, address = proxy
    faulty.faults = [Fault("/manifests/", "status", status=429,
                           headers={"Retry-After": "3600"})]
    with pytest.raises(RegistryError, match="asks to wait 3600 s"):
        api.inspect(f"docker://{address}/{IMAGE}", registry=FAST)


def test_an_unreachable_registry() -> None:
    with pytest.raises(RegistryUnreachable) as caught:
        api.inspect(f"docker://127.0.0.1:{free_port()}/{IMAGE}", registry=FAST)
    assert caught.value.exit_code == ExitCode.REGISTRY_UNREACHABLE
    assert "127.0.0.1" in str(caught.value)
