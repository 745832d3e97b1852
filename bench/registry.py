"""The registry case of `make bench`: an image read straight from a loopback registry.

Debian's `docker-registry` serves a temporary storage on 127.0.0.1; skopeo pushes the `big`
image's OCI archive (gzip layers) to it as `bench/big:1`, and `bench/big:2` is the same image
with one more small layer (its manifest and config written here). Then, round by round:

- `imagescope inspect docker://…/bench/big:1`, cold (an empty cache), against
  `skopeo copy docker://…/bench/big:1 dir:…` of the same image (which writes every blob to
  disk, where imagescope only reads);
- `imagescope diff docker://…:1 docker://…:2 --verbose`, cold: the layers fetched are
  counted from its `--verbose` lines: each distinct layer once, the shared ones not twice.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.run import IMAGESCOPE, Case, Result, Row, interleaved, measure, ratio, scope_env
from tests.registry.servers import push_blob, put_manifest

SKOPEO = shutil.which("skopeo")
REGISTRY = shutil.which("docker-registry")
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def rows(archive: str, runs: int, work: Path) -> list[Row]:
    """The registry rows of the bench table (none, with a line saying why, when skopeo or
    docker-registry is missing)."""
    if SKOPEO is None or REGISTRY is None:
        print("  skipped: needs skopeo and docker-registry (apt-get install skopeo "
              "docker-registry)")
        return []
    storage = work / "registry"
    process, address = _start(storage)
    try:
        began = time.perf_counter()
        subprocess.run([SKOPEO, "copy", "--quiet", "--dest-tls-verify=false",
                        f"oci-archive:{archive}", f"docker://{address}/bench/big:1"],
                       check=True)
        _push_second_version(address)
        print(f"  pushed bench/big:1 and :2 to {address} in "
              f"{time.perf_counter() - began:.0f} s", flush=True)
        image = f"docker://{address}/bench/big:1"

        def copy_env(i: int) -> dict[str, str]:
            shutil.rmtree(work / "skopeo", ignore_errors=True)
            return scope_env(work / f"skopeo-cache-{i}")

        cold, skopeo = interleaved([
            Case("imagescope registry cold",
                 [str(IMAGESCOPE), "inspect", "--format", "json", "--no-progress", image],
                 lambda i: scope_env(work / f"registry-cold-{i}"), timeout=900),
            Case("skopeo copy → dir:",
                 [SKOPEO, "copy", "--quiet", "--src-tls-verify=false", image,
                  f"dir:{work / 'skopeo'}"], copy_env, timeout=900),
        ], runs)
        shutil.rmtree(work / "skopeo", ignore_errors=True)
        found = [
            Row("registry: inspect cold vs skopeo copy", cold, skopeo,
                "wall ≤ 1.0 × skopeo", _met(cold, skopeo, 1.0), ratio(cold, skopeo),
                cold.rss / skopeo.rss if skopeo.samples else None,
                "skopeo writes the blobs to disk; imagescope reads and verifies them")]
        found.append(_diff_row(address, work, runs))
        return found
    finally:
        process.terminate()
        process.wait(30)
        shutil.rmtree(storage, ignore_errors=True)


def _diff_row(address: str, work: Path, runs: int) -> Row:
    old, new = f"docker://{address}/bench/big:1", f"docker://{address}/bench/big:2"
    layers = _layer_digests(address, "1")
    result = Result("imagescope registry diff cold", ok_codes=(0, 1))
    fetched_counts: list[tuple[int, int]] = []
    for i in range(runs):
        sample = measure([str(IMAGESCOPE), "diff", "--format", "json", "--no-progress",
                          "--verbose", old, new], env=scope_env(work / f"diff-cache-{i}"),
                         timeout=900)
        result.samples.append(sample)
        fetched = [line.split()[3] for line in sample.stderr.splitlines()
                   if " fetched layer " in line]
        fetched_counts.append((len(fetched), len(set(fetched))))
        print(f"    imagescope registry diff cold #{i + 1}: {sample.wall:7.2f} s, "
              f"{len(fetched)} layer blobs fetched ({len(set(fetched))} distinct; the images "
              f"have {len(layers) + 1} distinct layers)", flush=True)
    once = all(total == distinct == len(layers) + 1 for total, distinct in fetched_counts)
    return Row("registry: diff v1 → v2, one layer apart (cold)", result, None,
               "each distinct layer fetched once", result.ok and once, None, None,
               f"{fetched_counts[-1][0]} layer blobs fetched for {len(layers)} + "
               f"{len(layers) + 1} layers: the {len(layers)} shared ones once")


def _met(result: Result, baseline: Result, limit: float) -> bool | None:
    r = ratio(result, baseline)
    return None if r is None else r <= limit


def _start(storage: Path) -> tuple[subprocess.Popen[bytes], str]:
    import socket

    storage.mkdir(parents=True, exist_ok=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = storage / "config.yml"
    config.write_text(f"version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
                      f"storage:\n  filesystem:\n    rootdirectory: {storage / 'data'}\n"
                      f"http:\n  addr: 127.0.0.1:{port}\n")
    assert REGISTRY is not None
    process = subprocess.Popen([REGISTRY, "serve", str(config)], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1):
                return process, f"127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("docker-registry did not start")


def _get(address: str, path: str, accept: str = "") -> bytes:
    request = urllib.request.Request(f"http://{address}{path}",
                                     headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=60) as answer:
        data: bytes = answer.read()
        return data


def _manifest(address: str, tag: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(_get(address, f"/v2/bench/big/manifests/{tag}",
                                             f"{OCI_MANIFEST}, {DOCKER_MANIFEST}"))
    return loaded


def _layer_digests(address: str, tag: str) -> list[str]:
    return [layer["digest"] for layer in _manifest(address, tag)["layers"]]


def _push_second_version(address: str) -> None:
    """bench/big:2: big:1 with one more layer (a 1 MiB file), as a rebuild that changed only
    the last step would make it."""
    manifest = _manifest(address, "1")
    config = json.loads(_get(address, f"/v2/bench/big/blobs/{manifest['config']['digest']}"))
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("app/version-2")
        payload = hashlib.sha256(b"v2").digest() * (1 << 15)
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    plain = layer.getvalue()
    blob = gzip.compress(plain, mtime=0)
    config["rootfs"]["diff_ids"].append("sha256:" + hashlib.sha256(plain).hexdigest())
    config.setdefault("history", []).append({"created_by": "COPY version-2 /app/"})
    config_bytes = json.dumps(config).encode()
    manifest["config"] = dict(manifest["config"], digest=push_blob(f"http://{address}", "bench/big", config_bytes),
                              size=len(config_bytes))
    media_type = manifest.get("mediaType", OCI_MANIFEST)
    gzip_type = ("application/vnd.oci.image.layer.v1.tar+gzip" if media_type == OCI_MANIFEST
                 else "application/vnd.docker.image.rootfs.diff.tar.gzip")
    manifest["layers"].append({"mediaType": gzip_type, "digest": push_blob(f"http://{address}", "bench/big", blob),
                               "size": len(blob)})
    put_manifest(f"http://{address}", "bench/big", "2", json.dumps(manifest).encode(),
                 media_type)
