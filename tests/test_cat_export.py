"""`imagescope cat` and `imagescope export` on hand-made images: files read as of a layer
(deleted, overwritten, hidden by an opaque directory), hardlinks and symlinks resolved inside
the image only, and an export that never writes outside its directory (no symlink followed,
in the image or in DIR), keeps permission bits but not setuid, skips device nodes and FIFOs.

Every expected byte string, name and mode is written out here by hand, never computed by the
code under test.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from fixtures import imagegen as g
from imagescope import api
from tests.cli import run_cli

FORMATS = ["docker-save", "oci-gzip", "oci-zstd"]


# --------------------------------------------------------------------------- helpers


@dataclass(frozen=True)
class Run:
    code: int
    stdout: bytes
    stderr: str


def run(*args: str | os.PathLike[str]) -> Run:
    """`imagescope ARGS` in this process; stdout kept as bytes (cat and `-o -` write binary)."""
    done = run_cli(*args)
    return Run(done.exit_code, done.stdout_bytes, done.stderr)


def build(tmp_path: Path, layers: list[bytes], fmt: str = "docker-save") -> str:
    """The image of `layers` (plain layer tars, bottom first) written as `fmt`; its REF."""
    spec = g.ImageSpec(layers=layers)
    if fmt == "docker-save":
        target = tmp_path / "image.tar"
        g.write_docker_legacy(target, spec)
    elif fmt == "oci-gzip":
        target = tmp_path / "layout-gzip"
        g.write_oci_layout(target, spec, compression="gzip")
    elif fmt == "oci-zstd":
        target = tmp_path / "layout-zstd"
        g.write_oci_layout(target, spec, compression="zstd")
    else:
        raise ValueError(fmt)
    return str(target)


def snapshot(root: Path, *, skip: Path | None = None) -> dict[str, tuple[str, bytes]]:
    """Every name under `root` (not following symlinks) → its kind and bytes/target; `skip`
    and what is below it left out."""
    found: dict[str, tuple[str, bytes]] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        if skip is not None and (here == skip or skip in here.parents):
            dirnames[:] = []
            continue
        for name in dirnames + filenames:
            path = here / name
            if skip is not None and path == skip:
                continue
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                found[str(path)] = ("link", os.readlink(path).encode())
            elif stat.S_ISDIR(info.st_mode):
                found[str(path)] = ("dir", b"")
            else:
                found[str(path)] = ("file", path.read_bytes())
    return found


def tree_of(directory: Path) -> dict[str, str | bytes]:
    """Names under `directory`, relative: "dir", ("link", target) as "->target", or bytes."""
    found: dict[str, str | bytes] = {}
    for dirpath, dirnames, filenames in os.walk(directory, followlinks=False):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(directory))
            if path.is_symlink():
                found[rel] = "->" + os.readlink(path)
            elif path.is_dir():
                found[rel] = "dir"
            else:
                found[rel] = path.read_bytes()
    return found


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


# --------------------------------------------------------------------------- 1. deleted file

PIP_ENTRY = b"pip cache entry: wheel bytes \x00\x01\x02\xff\n"


def deleted_file_layers() -> list[bytes]:
    return [
        g.layer_tar([g.dir("root"), g.dir("root/.cache"),
                     g.file("root/.cache/pip-entry", PIP_ENTRY),
                     g.file("root/keep.txt", b"kept\n")]),
        g.layer_tar([g.whiteout("root/.cache/pip-entry"),
                     g.file("app.txt", b"layer one\n")]),
    ]


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_deleted_file_is_gone_from_the_final_image_but_read_as_of_its_layer(
        tmp_path: Path, fmt: str) -> None:
    ref = build(tmp_path, deleted_file_layers(), fmt)

    final = run("cat", ref, "/root/.cache/pip-entry")
    assert final.code == 20
    assert final.stdout == b""
    assert final.stderr == ("imagescope: error: /root/.cache/pip-entry: "
                            "no such file in the final image\n")

    for _ in range(2):  # the second run reads the entries from the layer cache
        old = run("cat", ref, "/root/.cache/pip-entry", "--layer", "0")
        assert (old.code, old.stderr) == (0, "")
        assert old.stdout == b"pip cache entry: wheel bytes \x00\x01\x02\xff\n"

    # a name the layer does not have yet
    early = run("cat", ref, "/app.txt", "--layer", "0")
    assert early.code == 20
    assert early.stderr == "imagescope: error: /app.txt: no such file as of layer 0\n"
    assert run("cat", ref, "/app.txt", "--layer", "1").stdout == b"layer one\n"
    assert run("cat", ref, "/app.txt").stdout == b"layer one\n"


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_layers_are_read_by_seek_or_by_stream_as_the_format_allows(
        tmp_path: Path, fmt: str) -> None:
    """The format parametrization above does cover both ways of reading a file's bytes."""
    ref = build(tmp_path, deleted_file_layers(), fmt)
    with api.opened(ref) as image:
        layer = image.files.image.layers[0]
        entry = next(e for e in layer.entries if e.path == "root/.cache/pip-entry")
        seekable = layer.content_file is not None and entry.offset is not None
    assert seekable is (fmt == "docker-save")


def test_cat_errors_a_directory_and_a_layer_out_of_range(tmp_path: Path) -> None:
    ref = build(tmp_path, deleted_file_layers())

    directory = run("cat", ref, "/root")
    assert directory.code == 20
    assert directory.stdout == b""
    assert directory.stderr.startswith("imagescope: error: /root: ")
    assert directory.stderr.count("\n") == 1

    for layer in ("2", "7"):
        beyond = run("cat", ref, "/root/keep.txt", "--layer", layer)
        assert beyond.code == 2
        assert beyond.stdout == b""
        assert "--layer" in beyond.stderr
        assert beyond.stderr.count("\n") == 1

    assert run("export", ref, "/root", "--layer", "2", "-o", tmp_path / "out").code == 2


# --------------------------------------------------------------------------- 2. overwritten


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_overwritten_file_reads_new_in_the_final_image_and_old_as_of_layer_0(
        tmp_path: Path, fmt: str) -> None:
    layers = [
        g.layer_tar([g.dir("etc"), g.file("etc/app.conf", b"version=1\n")]),
        g.layer_tar([g.file("etc/app.conf", b"version=2\nextra=yes\n")]),
    ]
    ref = build(tmp_path, layers, fmt)

    assert run("cat", ref, "/etc/app.conf").stdout == b"version=2\nextra=yes\n"
    assert run("cat", ref, "/etc/app.conf", "--layer", "1").stdout == b"version=2\nextra=yes\n"
    old = run("cat", ref, "/etc/app.conf", "--layer", "0")
    assert (old.code, old.stdout, old.stderr) == (0, b"version=1\n", "")

    out0, out1 = tmp_path / "out0", tmp_path / "out1"
    assert run("export", ref, "/etc/app.conf", "--layer", "0", "-o", out0).code == 0
    assert run("export", ref, "/etc/app.conf", "-o", out1).code == 0
    assert (out0 / "etc/app.conf").read_bytes() == b"version=1\n"
    assert (out1 / "etc/app.conf").read_bytes() == b"version=2\nextra=yes\n"


# --------------------------------------------------------------------------- 3. hardlinks

PYTHON = b"#!ELF python\n"


def hardlink_layers() -> list[bytes]:
    return [
        g.layer_tar([g.dir("usr"), g.dir("usr/bin"),
                     g.file("usr/bin/python3.11", PYTHON, mode=0o755),
                     g.hardlink("usr/bin/python3", "usr/bin/python3.11")]),
    ]


def assert_a_copy(path: Path) -> None:
    info = path.lstat()
    assert stat.S_ISREG(info.st_mode)
    assert info.st_nlink == 1
    assert stat.S_IMODE(info.st_mode) == 0o755
    assert path.read_bytes() == PYTHON


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_hardlink_reads_its_targets_bytes_and_exports_alone_as_a_copy(tmp_path: Path,
                                                                         fmt: str) -> None:
    ref = build(tmp_path, hardlink_layers(), fmt)

    cat = run("cat", ref, "/usr/bin/python3")
    assert (cat.code, cat.stdout, cat.stderr) == (0, PYTHON, "")

    out = tmp_path / "out"
    done = run("export", ref, "/usr/bin/python3", "-o", out)
    assert done.code == 0, done.stderr
    assert tree_of(out) == {"usr": "dir", "usr/bin": "dir", "usr/bin/python3": PYTHON}
    assert_a_copy(out / "usr/bin/python3")


# Two names of one content (a file and its hardlink): both written, also from a layer that is
# streamed (compressed), where one pass over the layer feeds both.


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_hardlink_and_its_target_export_as_two_copies(tmp_path: Path, fmt: str) -> None:
    ref = build(tmp_path, hardlink_layers(), fmt)
    out = tmp_path / "out"
    done = run("export", ref, "/usr/bin", "-o", out)
    assert done.code == 0, done.stderr
    assert tree_of(out) == {"usr": "dir", "usr/bin": "dir",
                            "usr/bin/python3": PYTHON, "usr/bin/python3.11": PYTHON}
    assert_a_copy(out / "usr/bin/python3")
    assert_a_copy(out / "usr/bin/python3.11")
    assert not os.path.samefile(out / "usr/bin/python3", out / "usr/bin/python3.11")


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_hardlink_and_its_target_are_two_regular_members_of_the_tar(tmp_path: Path,
                                                                       fmt: str) -> None:
    ref = build(tmp_path, hardlink_layers(), fmt)
    done = run("export", ref, "/usr/bin", "-o", "-")
    assert done.code == 0, done.stderr
    with tarfile.open(fileobj=io.BytesIO(done.stdout)) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert sorted(members) == ["usr/bin", "usr/bin/python3", "usr/bin/python3.11"]
        for name in ("usr/bin/python3", "usr/bin/python3.11"):
            assert members[name].isreg()  # a copy, not a tar hardlink
            file = tar.extractfile(members[name])
            assert file is not None
            assert file.read() == PYTHON


# --------------------------------------------------------------------------- 4. symlinks out

IMAGE_PASSWD = b"root:x:0:0:the image's own root:/root:/bin/ash\n"


def symlink_layers(outside: Path) -> list[bytes]:
    return [
        g.layer_tar([
            g.dir("etc"),
            g.file("etc/passwd", IMAGE_PASSWD),
            g.symlink("etc/target", "../../../../etc/passwd"),
            g.symlink("etc/absolute", "/etc/passwd"),
            g.symlink("etc/hostonly", "/etc/hostname-only-on-the-host"),
            g.symlink("etc/outside", str(outside)),  # an absolute host path
            g.symlink("etc/up", "../../.."),
        ]),
    ]


def test_cat_follows_symlinks_inside_the_image_only(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "host.txt").write_bytes(b"host bytes\n")
    ref = build(tmp_path, symlink_layers(outside))

    for link in ("/etc/target", "/etc/absolute", "/etc/up/etc/passwd",
                 "/etc/up/../../etc/target"):
        got = run("cat", ref, link)
        assert (got.code, got.stdout, got.stderr) == (0, IMAGE_PASSWD, ""), link

    for link in ("/etc/hostonly", "/etc/outside/host.txt"):
        got = run("cat", ref, link)
        assert got.code == 20, link
        assert got.stdout == b""
        assert "no such file in the final image" in got.stderr


def test_export_writes_symlinks_as_symlinks_and_nothing_outside_dir(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    ref = build(tmp_path, symlink_layers(outside))
    out = tmp_path / "out"
    before = snapshot(tmp_path, skip=out)

    done = run("export", ref, "/etc", "-o", out)
    assert done.code == 0, done.stderr

    assert snapshot(tmp_path, skip=out) == before
    assert list(outside.iterdir()) == []
    assert tree_of(out) == {
        "etc": "dir",
        "etc/passwd": IMAGE_PASSWD,
        "etc/target": "->../../../../etc/passwd",
        "etc/absolute": "->/etc/passwd",
        "etc/hostonly": "->/etc/hostname-only-on-the-host",
        "etc/outside": "->" + str(outside),
        "etc/up": "->../../..",
    }

    # the symlink itself, named last: written as a link, not the file it points to
    single = tmp_path / "single"
    assert run("export", ref, "/etc/target", "-o", single).code == 0
    assert tree_of(single) == {"etc": "dir", "etc/target": "->../../../../etc/passwd"}


def test_a_later_file_below_an_image_symlink_is_not_written_through_it(tmp_path: Path) -> None:
    """Layer 0 makes `evil` a symlink to a host directory; layer 1 writes `evil/x`. Whatever the
    tree makes of that, the export must not create anything in the host directory."""
    outside = tmp_path / "outside"
    outside.mkdir()
    layers = [
        g.layer_tar([g.symlink("evil", str(outside))]),
        g.layer_tar([g.file("evil/x", b"through the link\n"), g.file("ok", b"ok\n")]),
    ]
    ref = build(tmp_path, layers)
    out = tmp_path / "out"
    before = snapshot(tmp_path, skip=out)

    done = run("export", ref, "/", "-o", out)
    assert done.code in (0, 13), done.stderr
    assert list(outside.iterdir()) == []
    assert snapshot(tmp_path, skip=out) == before


# --------------------------------------------------------------------------- 5. `..` names


def test_names_with_dotdot_stay_inside_the_image_and_inside_dir(tmp_path: Path) -> None:
    layers = [
        g.layer_tar([
            g.file("../../escape.txt", b"escaped?\n"),
            g.file("a/../../b/c.txt", b"c bytes\n"),
            g.file("./d/./e/../f.txt", b"f bytes\n"),
        ]),
    ]
    ref = build(tmp_path, layers)

    assert run("cat", ref, "/escape.txt").stdout == b"escaped?\n"
    assert run("cat", ref, "/b/c.txt").stdout == b"c bytes\n"
    assert run("cat", ref, "/d/f.txt").stdout == b"f bytes\n"
    # and the path asked is normalised the same way
    assert run("cat", ref, "../../escape.txt").stdout == b"escaped?\n"
    assert run("cat", ref, "/x/../../b/c.txt").stdout == b"c bytes\n"

    out = tmp_path / "deep" / "out"
    out.parent.mkdir()
    before = snapshot(tmp_path, skip=out)
    done = run("export", ref, "/", "-o", out)
    assert done.code == 0, done.stderr
    assert snapshot(tmp_path, skip=out) == before
    assert not (tmp_path / "escape.txt").exists()
    assert not (tmp_path / "b").exists()
    assert tree_of(out) == {
        "escape.txt": b"escaped?\n",
        "b": "dir",
        "b/c.txt": b"c bytes\n",
        "d": "dir",
        "d/f.txt": b"f bytes\n",
    }

    asked = tmp_path / "asked"
    assert run("export", ref, "../../escape.txt", "-o", asked).code == 0
    assert tree_of(asked) == {"escape.txt": b"escaped?\n"}


# --------------------------------------------------------------------------- 6. symlink in DIR


def test_a_symlink_already_in_dir_is_never_followed(tmp_path: Path) -> None:
    layers = [g.layer_tar([g.dir("etc"), g.file("etc/x", b"x bytes\n"),
                           g.file("etc/y", b"y bytes\n")])]
    ref = build(tmp_path, layers)
    other = tmp_path / "other"
    other.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "etc").symlink_to(other)

    for path in ("/etc/x", "/etc"):
        done = run("export", ref, path, "-o", out)
        assert done.code == 13, (path, done.stderr)
        assert done.stderr.startswith("imagescope: error: ")
        assert done.stderr.count("\n") == 1
        assert list(other.iterdir()) == []
        assert os.readlink(out / "etc") == str(other)

    # a symlink, or a hardlink to a file outside, at the file's own name: replaced by the
    # file, never written through
    target = tmp_path / "victim"
    target.write_bytes(b"untouched\n")
    target.chmod(0o600)
    for kind in ("symlink", "hardlink"):
        out2 = tmp_path / f"out-{kind}"
        (out2 / "etc").mkdir(parents=True)
        if kind == "symlink":
            (out2 / "etc" / "x").symlink_to(target)
        else:
            os.link(target, out2 / "etc" / "x")
        done = run("export", ref, "/etc/x", "-o", out2)
        assert done.code == 0, done.stderr
        assert target.read_bytes() == b"untouched\n" and mode_of(target) == 0o600
        written = out2 / "etc" / "x"
        assert not written.is_symlink() and written.stat().st_nlink == 1
        assert written.read_bytes() == b"x bytes\n"


# --------------------------------------------------------------------------- 7. modes


def test_permission_bits_are_kept_but_not_setuid_setgid_or_sticky(tmp_path: Path) -> None:
    layers = [
        g.layer_tar([
            g.dir("bin", mode=0o755),
            g.file("bin/su", b"su\n", mode=0o4755),
            g.file("bin/wall", b"wall\n", mode=0o2711),
            g.dir("etc", mode=0o755),
            g.file("etc/shadow", b"root:*:0::::::\n", mode=0o600),
            g.file("etc/readonly", b"ro\n", mode=0o444),
            g.dir("private", mode=0o750),
            g.file("private/key", b"k\n", mode=0o640),
            g.dir("tmp", mode=0o1777),
        ]),
    ]
    ref = build(tmp_path, layers)
    out = tmp_path / "out"
    done = run("export", ref, "/", "-o", out)
    assert done.code == 0, done.stderr

    assert mode_of(out / "bin/su") == 0o755
    assert mode_of(out / "bin/wall") == 0o711
    assert mode_of(out / "etc/shadow") == 0o600
    assert mode_of(out / "etc/readonly") == 0o444
    assert mode_of(out / "private") == 0o750
    assert mode_of(out / "private/key") == 0o640
    assert mode_of(out / "tmp") == 0o777
    assert (out / "bin/su").read_bytes() == b"su\n"

    with tarfile.open(fileobj=io.BytesIO(run("export", ref, "/", "-o", "-").stdout)) as listed:
        modes = {m.name: m.mode for m in listed.getmembers()}
    assert modes["bin/su"] == 0o755
    assert modes["bin/wall"] == 0o711
    assert modes["etc/shadow"] == 0o600
    assert modes["private"] == 0o750
    assert modes["tmp"] == 0o777


# --------------------------------------------------------------------------- 8. devices


def device_layer() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        def add(info: tarfile.TarInfo, data: bytes | None = None) -> None:
            info.mtime = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data) if data is not None else None)

        d = tarfile.TarInfo("dev")
        d.type, d.mode = tarfile.DIRTYPE, 0o755
        add(d)
        null = tarfile.TarInfo("dev/null")
        null.type, null.mode, null.devmajor, null.devminor = tarfile.CHRTYPE, 0o666, 1, 3
        add(null)
        sda = tarfile.TarInfo("dev/sda")
        sda.type, sda.mode, sda.devmajor, sda.devminor = tarfile.BLKTYPE, 0o660, 8, 0
        add(sda)
        pipe = tarfile.TarInfo("dev/pipe")
        pipe.type, pipe.mode = tarfile.FIFOTYPE, 0o644
        add(pipe)
        ok = tarfile.TarInfo("dev/README")
        ok.size, ok.mode = 7, 0o644
        add(ok, b"devices")
    return buf.getvalue()


def test_device_nodes_and_fifos_are_skipped_with_a_line_each(tmp_path: Path) -> None:
    ref = build(tmp_path, [device_layer()])
    out = tmp_path / "out"
    done = run("export", ref, "/dev", "-o", out)
    assert done.code == 0, done.stderr
    lines = done.stderr.splitlines()
    for name in ("/dev/null", "/dev/sda", "/dev/pipe"):
        assert sum(f"skipped {name}" in line for line in lines) == 1, done.stderr
    assert tree_of(out) == {"dev": "dir", "dev/README": b"devices"}

    streamed = run("export", ref, "/dev", "-o", "-")
    assert streamed.code == 0
    assert "skipped /dev/null" in streamed.stderr
    with tarfile.open(fileobj=io.BytesIO(streamed.stdout)) as tar:
        names = tar.getnames()
    assert sorted(names) == ["dev", "dev/README"]

    device = run("cat", ref, "/dev/null")
    assert device.code != 0
    assert device.stdout == b""


# --------------------------------------------------------------------------- 9. `-o -`


@pytest.mark.parametrize("fmt", FORMATS)
def test_export_to_stdout_is_a_tar_of_the_asked_names(tmp_path: Path, fmt: str) -> None:
    layers = [
        g.layer_tar([
            g.dir("etc"),
            g.file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n"),
            g.file("etc/group", b"root:x:0:\n"),
            g.file("etc/hosts", b"127.0.0.1 localhost\n"),
            g.dir("app"),
            g.file("app/main.py", b"print('hi')\n", mode=0o755),
            g.file("app/empty", b""),
            g.symlink("app/link", "main.py"),
        ]),
        g.layer_tar([g.file("app/big", b"B" * 1500)]),
    ]
    ref = build(tmp_path, layers, fmt)

    done = run("export", ref, "/etc/passwd", "/etc/group", "/app", "-o", "-")
    assert done.code == 0, done.stderr
    with tarfile.open(fileobj=io.BytesIO(done.stdout)) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert sorted(members) == ["app", "app/big", "app/empty", "app/link", "app/main.py",
                                   "etc/group", "etc/passwd"]

        def data(name: str) -> bytes:
            file = tar.extractfile(members[name])
            assert file is not None
            return file.read()

        assert data("etc/passwd") == b"root:x:0:0::/root:/bin/sh\n"
        assert data("etc/group") == b"root:x:0:\n"
        assert data("app/main.py") == b"print('hi')\n"
        assert data("app/empty") == b""
        assert data("app/big") == b"B" * 1500
        assert members["app"].isdir()
        assert members["app/link"].issym()
        assert members["app/link"].linkname == "main.py"
        assert members["app/main.py"].mode == 0o755


# --------------------------------------------------------------------------- 10. opaque dirs


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_opaque_directory_hides_the_lower_files_but_not_as_of_layer_0(tmp_path: Path,
                                                                        fmt: str) -> None:
    layers = [
        g.layer_tar([g.dir("data"), g.file("data/old1", b"old one\n"),
                     g.file("data/old2", b"old two\n"), g.dir("data/sub"),
                     g.file("data/sub/old3", b"old three\n")]),
        g.layer_tar([g.dir("data"), g.opaque("data"), g.file("data/new", b"new\n")]),
    ]
    ref = build(tmp_path, layers, fmt)

    final = tmp_path / "final"
    assert run("export", ref, "/data", "-o", final).code == 0
    assert tree_of(final) == {"data": "dir", "data/new": b"new\n"}

    old = tmp_path / "old"
    assert run("export", ref, "/data", "--layer", "0", "-o", old).code == 0
    assert tree_of(old) == {
        "data": "dir",
        "data/old1": b"old one\n",
        "data/old2": b"old two\n",
        "data/sub": "dir",
        "data/sub/old3": b"old three\n",
    }

    assert run("cat", ref, "/data/old1").code == 20
    assert run("cat", ref, "/data/sub/old3", "--layer", "0").stdout == b"old three\n"


# --------------------------------------------------------------------------- secrets


def test_a_secret_is_written_only_with_show_secret(tmp_path: Path) -> None:
    layers = [
        g.layer_tar([g.dir("root"), g.dir("root/.aws"),
                     g.file("root/.aws/credentials",
                            b"[default]\naws_access_key_id = AKIAEXAMPLEEXAMPLE00\n"),
                     g.symlink("creds", "/root/.aws/credentials")]),
        g.layer_tar([g.whiteout("root/.aws/credentials")]),
    ]
    ref = build(tmp_path, layers)
    secret = b"[default]\naws_access_key_id = AKIAEXAMPLEEXAMPLE00\n"

    for args in (["/root/.aws/credentials", "--layer", "0"], ["/creds", "--layer", "0"]):
        refused = run("cat", ref, *args)
        assert refused.code == 2, args
        assert refused.stdout == b""
        assert "--show-secret" in refused.stderr
        shown = run("cat", ref, *args, "--show-secret")
        assert (shown.code, shown.stdout) == (0, secret), args

    out = tmp_path / "out"
    refused = run("export", ref, "/root", "--layer", "0", "-o", out)
    assert refused.code == 2
    assert "--show-secret" in refused.stderr
    assert not (out / "root/.aws/credentials").exists()
    shown = run("export", ref, "/root", "--layer", "0", "--show-secret", "-o", out)
    assert shown.code == 0, shown.stderr
    assert (out / "root/.aws/credentials").read_bytes() == secret


def test_a_hardlink_to_a_secret_is_a_secret_too(tmp_path: Path) -> None:
    secret = b"[default]\naws_access_key_id = AKIAEXAMPLEEXAMPLE00\n"
    layers = [g.layer_tar([g.dir("root"), g.dir("root/.aws"),
                           g.file("root/.aws/credentials", secret), g.dir("tmp"),
                           g.hardlink("tmp/notes", "root/.aws/credentials")])]
    ref = build(tmp_path, layers)
    refused = run("cat", ref, "/tmp/notes")
    assert refused.code == 2 and refused.stdout == b"" and "--show-secret" in refused.stderr
    out = tmp_path / "out"
    refused = run("export", ref, "/tmp", "-o", out)
    assert refused.code == 2 and not (out / "tmp/notes").exists()
    assert run("cat", ref, "/tmp/notes", "--show-secret").stdout == secret


def test_a_failed_write_is_exit_13_not_an_internal_error() -> None:
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    with open("/dev/full", "wb") as full:
        done = subprocess.run([sys.executable, "-m", "imagescope", "export",
                               "fixtures/example-image.tar", "/app", "-o", "-"], cwd=root,
                              stdout=full, stderr=subprocess.PIPE, text=True, timeout=120,
                              check=False)
    assert done.returncode == 13, done.stderr
    assert done.stderr.startswith("imagescope: error: cannot write to stdout")


def test_reads_of_one_archive_from_two_threads_do_not_mix(tmp_path: Path) -> None:
    """The browser reads files on worker threads, through one open archive (threads switched
    as often as the interpreter can, for the reads to interleave)."""
    import sys
    import threading

    layers = [g.layer_tar([g.file("a", g.content("a", 300_000))]),
              g.layer_tar([g.file("b", g.content("b", 300_000))])]
    target = tmp_path / "image.tar"
    g.write_oci_archive(target, g.ImageSpec(layers=layers), compression="gzip")
    with api.opened(str(target)) as opened:
        files = opened.files
        got: dict[str, bytes] = {}
        errors: list[BaseException] = []

        def read(path: str) -> None:
            data = bytearray()
            try:
                for _ in range(5):
                    data.clear()
                    files.read(files.locate(path, None).found, data.extend)
            except Exception as exc:  # noqa: BLE001 (reported below)
                errors.append(exc)
            got[path] = bytes(data)

        threads = [threading.Thread(target=read, args=(p,)) for p in ("a", "b")]
        interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        finally:
            sys.setswitchinterval(interval)
    assert errors == []
    assert got == {"a": g.content("a", 300_000), "b": g.content("b", 300_000)}


def test_dotdot_in_a_link_target_climbs_from_where_the_links_lead(tmp_path: Path) -> None:
    """link → sub/../target.txt with sub → real/deep/dir: the kernel resolves sub first, so
    `..` leads to real/deep, not back to the root."""
    layers = [g.layer_tar([g.dir("real"), g.dir("real/deep"), g.dir("real/deep/dir"),
                           g.file("real/deep/target.txt", b"DEEP"),
                           g.file("target.txt", b"TOP"),
                           g.symlink("sub", "real/deep/dir"),
                           g.symlink("link", "sub/../target.txt"),
                           g.symlink("up", "../../../../target.txt")])]
    ref = build(tmp_path, layers)
    assert run("cat", ref, "/link").stdout == b"DEEP"
    assert run("cat", ref, "/up").stdout == b"TOP"  # never above the root
