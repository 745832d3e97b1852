"""A command-line reference → the source that reads it (`refs.parse_ref`), and which image of
an archive or layout a selector picks (`sources.resolve`), tested directly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fixtures import imagegen as g
from imagescope.errors import ImageNotFound, ImagescopeError, SourceNotFound, UsageError
from imagescope.layer.digests import Digest
from imagescope.sources import resolve
from imagescope.sources.refs import (
    ARCHIVE,
    DOCKER_ARCHIVE,
    ENGINE,
    OCI,
    OCI_ARCHIVE,
    SourceRef,
    familiar,
    is_image_id,
    parse_ref,
    split_tag,
)

IMAGE_ID = "sha256:" + "a1" * 32


@pytest.mark.parametrize(("text", "expected"), [
    ("busybox", SourceRef(ENGINE, "busybox")),
    ("busybox:1.36", SourceRef(ENGINE, "busybox:1.36")),
    ("localhost:5000/team/app:v2", SourceRef(ENGINE, "localhost:5000/team/app:v2")),
    (f"app@{IMAGE_ID}", SourceRef(ENGINE, f"app@{IMAGE_ID}")),
    (IMAGE_ID, SourceRef(ENGINE, IMAGE_ID)),
    ("docker-daemon:busybox:latest", SourceRef(ENGINE, "busybox:latest")),
    ("docker-archive:img.tar", SourceRef(DOCKER_ARCHIVE, "img.tar")),
    ("docker-archive:img.tar:busybox:latest", SourceRef(DOCKER_ARCHIVE, "img.tar",
                                                        "busybox:latest")),
    ("docker-archive:img.tar:@1", SourceRef(DOCKER_ARCHIVE, "img.tar", "@1")),
    ("oci:layout", SourceRef(OCI, "layout")),
    ("oci:layout:app:v1", SourceRef(OCI, "layout", "app:v1")),
    (f"oci:layout:@{IMAGE_ID}", SourceRef(OCI, "layout", f"@{IMAGE_ID}")),
    (f"oci:layout:{IMAGE_ID}", SourceRef(OCI, "layout", IMAGE_ID)),
    ("oci-archive:img.oci:v1", SourceRef(OCI_ARCHIVE, "img.oci", "v1")),
])
def test_prefixes_and_engine_names(text: str, expected: SourceRef) -> None:
    assert parse_ref(text) == expected


def test_an_existing_path_is_a_file_source_told_by_what_it_is(tmp_path: Path) -> None:
    archive = tmp_path / "image"
    archive.write_bytes(b"")
    assert parse_ref(str(archive)) == SourceRef(ARCHIVE, str(archive))
    assert parse_ref(str(tmp_path)) == SourceRef(OCI, str(tmp_path))


def test_a_selector_is_not_split_off_a_path_that_exists_whole(tmp_path: Path) -> None:
    odd = tmp_path / "a:b.tar"
    odd.write_bytes(b"")
    assert parse_ref(f"docker-archive:{odd}") == SourceRef(DOCKER_ARCHIVE, str(odd))


@pytest.mark.parametrize("text", ["./missing.tar", "/nope/image.tar", "missing.tar.gz", "~x/",
                                  "dir/"])
def test_what_looks_like_a_path_is_never_an_engine_lookup(text: str) -> None:
    with pytest.raises(SourceNotFound):
        parse_ref(text)


@pytest.mark.parametrize("text", ["", "Upper/Case", "docker-daemon:bad name", "docker-archive:"])
def test_malformed_references_are_usage_or_source_errors(text: str) -> None:
    with pytest.raises((UsageError, SourceNotFound)):
        parse_ref(text)


def test_image_ids_and_familiar_names() -> None:
    assert is_image_id(IMAGE_ID) and not is_image_id(IMAGE_ID.upper())
    assert not is_image_id("sha256:" + "a1" * 31) and not is_image_id("sha512:" + "a1" * 32)
    assert familiar("docker.io/library/busybox") == "busybox:latest"
    assert familiar("ghcr.io/a/b:1") == "ghcr.io/a/b:1"
    assert familiar(f"busybox@{IMAGE_ID}") == f"busybox@{IMAGE_ID}"
    assert split_tag("host:5000/repo") == ("host:5000/repo", None)
    assert split_tag("host:5000/repo:v1") == ("host:5000/repo", "v1")


def test_digests_keep_to_the_oci_grammar() -> None:
    assert Digest.parse(IMAGE_ID) == Digest("sha256", "a1" * 32)
    assert Digest.parse("sha256:../../etc") is None and Digest.parse(7) is None
    assert Digest.of_path("blobs/sha256/" + "a1" * 32) == Digest.parse(IMAGE_ID)
    assert Digest("sha256", "a1" * 32).path == "blobs/sha256/" + "a1" * 32
    assert Digest("sha384", "ab" * 48).canonical and not Digest("md5", "ab" * 16).verifiable


# --------------------------------------------------------------------------- selection


def write_two_image_archive(path: Path) -> None:
    """A `docker save app:v1 app:v2` archive: both images' members, one manifest.json."""
    members: list[g.Member] = []
    entries: list[object] = []
    for name, tag, size in (("one", "app:v1", 10), ("two", "app:v2", 20)):
        spec = g.ImageSpec(layers=[g.layer_tar([g.file(name, size=size)])], repo_tag=tag)
        for member in g.docker_legacy_members(spec)[0]:
            if member.name == "manifest.json":
                entries += json.loads(member.data)
            elif member.name != "repositories":
                members.append(member)
    g.write_tar(path, [*members, g.Member("manifest.json", json.dumps(entries).encode())])


def files_of(reference: str) -> list[str]:
    with resolve(reference) as handle:
        image = handle.image()
    return [entry.path for layer in image.layers for entry in layer.entries]


def test_a_docker_archive_selector_picks_by_tag_or_position(tmp_path: Path) -> None:
    path = tmp_path / "two.tar"
    write_two_image_archive(path)
    assert files_of(f"docker-archive:{path}:app:v2") == ["two"]
    assert files_of(f"docker-archive:{path}:@0") == ["one"]
    assert files_of(f"docker-archive:{path}:docker.io/library/app:v1") == ["one"]
    with pytest.raises(ImageNotFound):
        files_of(f"docker-archive:{path}:app:v3")
    with pytest.raises(ImagescopeError, match="app:v1.*app:v2|pick one"):
        files_of(str(path))  # two images and no selector: the user must pick
