"""Command line: parse, call the library, render, choose the exit code — no analysis here."""

from __future__ import annotations

import contextlib
import gc
import os
import select
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from imagescope import __version__
from imagescope.errors import (
    ExitCode,
    ImagescopeError,
    OutputError,
    PathNotFound,
    SourceNotFound,
    UsageError,
)
from imagescope.limits import DEFAULT_MAX_LAYER_RATIO, RATIO_FLOOR_BYTES, ReadLimits
from imagescope.render import FORMATS, Page
from imagescope.sizes import Growth, parse_growth, parse_ratio, parse_size

if TYPE_CHECKING:  # (the analysis is imported by the commands that run it: not for --help)
    from imagescope.analysis.dockerfile_map import Instruction
    from imagescope.analysis.gates import GateResult, GateSettings
    from imagescope.analysis.report import Report

_T = TypeVar("_T")

_FORMATS = FORMATS


def _check_output_path(output: Path | None) -> None:
    """Fail before the (possibly long) analysis when the output cannot be written."""
    if output is None:
        if sys.stdout is None:  # started with stdout closed (`>&-`)
            raise OutputError("cannot write to stdout: it is closed")
        return
    parent = output.parent if str(output.parent) else Path(".")
    try:
        if output.is_dir():
            raise OutputError(f"cannot write {output}: it is a directory")
        if not parent.is_dir():
            raise OutputError(f"cannot write {output}: directory {parent} does not exist")
        if not os.access(parent, os.W_OK) or (output.exists() and not os.access(output, os.W_OK)):
            raise OutputError(f"cannot write {output}: permission denied")
    except OSError as exc:  # a name too long, say
        raise OutputError(f"cannot write {output}: {exc.strerror or exc}") from None


def _emit(text: str, output: Path | None) -> None:
    """Write the report to `output`, or to stdout; either failing is an OutputError (exit 13).

    A closed pipe on stdout is not a failure to report: `_PipeClosed` goes on to `main`.
    """
    if output is None:
        _write_stdout(text)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"cannot write {output}: {exc.strerror or exc}") from None


def _write_stdout(text: str) -> None:
    """`text` on stdout; a write that fails (`> /dev/full`: ENOSPC, EIO) is an OutputError.

    Characters the stream's encoding cannot hold (a non-UTF-8 locale) are written as backslash
    escapes. The bytes go straight to the descriptor, in a loop: with PYTHONUNBUFFERED the text
    layer hands them to the raw file, which may take only part of them (a pipe closing
    mid-write), and it would drop the rest without a word; a non-blocking stdout (EAGAIN) is
    waited on rather than failed.
    """
    stream = sys.stdout
    try:
        try:
            fd = stream.fileno()
        except (OSError, ValueError):  # no descriptor: a test's capture
            stream.write(text)
            stream.flush()
            return
        data = memoryview(text.encode(stream.encoding or "utf-8", "backslashreplace"))
        stream.flush()
        while data:
            try:
                data = data[os.write(fd, data):]
            except BlockingIOError:
                select.select([], [fd], [])
    except BrokenPipeError:
        raise _PipeClosed from None
    except OSError as exc:
        _discard(stream)
        raise OutputError(f"cannot write to stdout: {exc.strerror or exc}") from None


def _discard(stream: Any) -> None:
    """Point `stream`'s file descriptor at /dev/null.

    What it still buffers is then flushed there when the interpreter exits, rather than failing
    again (ENOSPC, EPIPE) and printing "Exception ignored … BrokenPipeError" with status 120.
    """
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):  # no descriptor (captured in a test): no flush
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


class _PipeClosed(Exception):
    """stdout (or stderr) is a pipe whose reader has gone: EPIPE, as `… | head -1` makes it.

    Not an OSError, so that click, which exits 1 on EPIPE, lets it through to `main`.
    """


def _reader_gone(stream: Any) -> bool:
    """Whether `stream` is a pipe (or terminal) no one reads any more: poll flags an error."""
    try:
        fd = stream.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no descriptor (captured in a test)
        return False


@contextlib.contextmanager
def _closed_pipe_to_main() -> Iterator[None]:
    """A BrokenPipeError as `_PipeClosed` when stdout or stderr is the pipe that closed; any
    other (a socket, a worker's pipe) as the internal error it is, not click's silent exit 1."""
    try:
        yield
    except BrokenPipeError as exc:
        if _reader_gone(sys.stdout) or _reader_gone(sys.stderr):
            raise _PipeClosed from None
        raise RuntimeError(f"a pipe or socket closed under imagescope ({exc})") from exc


class _Group(click.Group):
    """The command group; a closed pipe anywhere in it (help included) is left to `main`."""

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        with _closed_pipe_to_main():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: click.Context) -> Any:
        with _closed_pipe_to_main():
            return super().invoke(ctx)


@click.group(cls=_Group,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="imagescope")
def cli() -> None:
    """Measure the real layer waste of container images, to the byte.

    Bytes written in one layer and deleted or overwritten in a later one still ship with every
    pull. imagescope replays the layers as an overlay filesystem does and reports exactly which
    files were hidden, by which Dockerfile step, and how many bytes that costs.
    """


_REF_HELP = """
    \b
    REF is any of:
      name[:tag], name@sha256:...  an image in the local Docker engine
                                   (DOCKER_HOST honoured)
      docker://[HOST/]REPO[:TAG]   an image in its registry, read directly
                                   (--creds, --ca-cert, --insecure-registry)
      PATH.tar                     a `docker save` archive or an OCI archive
      DIR                          an OCI image layout (oci-layout, index.json)
      docker-daemon:NAME           docker-archive:PATH[:TAG]
      oci:DIR[:TAG]                oci-archive:PATH[:TAG]
"""

_GATE_HELP = """
    Gates (exit 1 when one fails; the report says which and by how much) can also be set in
    .imagescope.toml or [tool.imagescope] in pyproject.toml, found from the working directory
    upward; flags win. Sizes: 50MB, 1.5GiB, 512M, or bytes.
"""

_EXIT_MEANINGS = {
    ExitCode.OK: "success",
    ExitCode.GATE_FAILED: "a gate failed (the report is still written)",
    ExitCode.USAGE: "usage error",
    ExitCode.SOURCE_NOT_FOUND: "no such file or directory",
    ExitCode.NOT_AN_IMAGE: "not an image archive or layout",
    ExitCode.CORRUPT_ARCHIVE: "corrupt archive, layer or document",
    ExitCode.MISSING_BLOB: "a blob the manifest names is missing",
    ExitCode.UNSUPPORTED_MEDIA_TYPE: "unsupported media type",
    ExitCode.PLATFORM_NOT_FOUND: "the platform asked for is not there",
    ExitCode.IMAGE_NOT_FOUND: "image not in the engine or registry",
    ExitCode.PULL_FAILED: "pull failed",
    ExitCode.ENGINE_UNREACHABLE: "Docker engine not reachable",
    ExitCode.ENGINE_ERROR: "Docker engine error",
    ExitCode.OUTPUT_ERROR: "the report cannot be written",
    ExitCode.CONFIG_ERROR: "invalid configuration file",
    ExitCode.LAYER_TOO_LARGE: "a layer past --max-layer-ratio/--max-layer-size",
    ExitCode.DIGEST_MISMATCH: "a blob does not match its digest",
    ExitCode.REGISTRY_UNREACHABLE: "registry not reachable (network, TLS)",
    ExitCode.REGISTRY_AUTH: "registry refused access (401/403)",
    ExitCode.REGISTRY_ERROR: "registry error (5xx, 429, bad answer)",
    ExitCode.PATH_NOT_FOUND: "the path is not in the image (cat, export)",
    ExitCode.INTERNAL_ERROR: "internal error (a bug: please report it)",
    ExitCode.INTERRUPTED: "interrupted",
    ExitCode.BROKEN_PIPE: "stdout closed early (`| head`)",
}


def _epilog(examples: str) -> str:
    """Examples, then every exit code (from ExitCode, so the table cannot drift)."""
    codes = "\n".join(f"  {int(code):>3}  {_EXIT_MEANINGS[code]}" for code in ExitCode)
    return f"\b\nExamples:\n{examples}\n\n\b\nExit codes:\n{codes}"


_INSPECT_EXAMPLES = """\
  imagescope inspect myapp:1.4
  imagescope inspect image.tar --format markdown -o report.md
  imagescope inspect docker://ghcr.io/acme/app:1.4 --platform linux/arm64
  imagescope inspect myapp:1.4 --base debian:12 --max-wasted 50MB"""

_DIFF_EXAMPLES = """\
  imagescope diff docker://reg.example/app:1.3 docker://reg.example/app:1.4
  imagescope diff old.tar new.tar --format markdown -o diff.md
  imagescope diff myapp:1.3 myapp:1.4 --max-new-waste 10MB --max-growth 5%"""


def _parsed(parse: Callable[..., Any]) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """A click callback running one of imagescope.sizes' parsers on the option's value."""

    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is None:
            return None
        try:
            return parse(value, what=f"--{param.name.replace('_', '-')}" if param.name else "")
        except ImagescopeError as exc:
            raise click.BadParameter(str(exc)) from None

    return callback


def _output_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed([
        click.option("--format", "output_format", type=click.Choice(_FORMATS), default="table",
                     show_default=True, help="Report format."),
        click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
                     help="Write the report to FILE instead of stdout."),
        click.option("--top", type=click.IntRange(min=0), default=10, show_default=True,
                     help="How many entries each list shows (table, markdown)."),
    ]):
        command = option(command)
    return command


def _source_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed([
        click.option("--pull", type=click.Choice(["missing", "always", "never"]),
                     default="missing", show_default=True,
                     help="Engine images: when to pull from the registry."),
        click.option("--platform", metavar="OS/ARCH[/VARIANT]",
                     help="Platform to pick from a multi-platform image (default: this host's)."),
        click.option("--progress/--no-progress", default=None,
                     help="Show progress on stderr (default: when stderr is a terminal)."),
        click.option("--no-cache", is_flag=True,
                     help="Neither use nor fill the layer analysis cache "
                          "($XDG_CACHE_HOME/imagescope)."),
        click.option("--stats", "show_stats", is_flag=True,
                     help="Print on stderr how many layers were read and how many came from "
                          "the cache."),
        click.option("--verbose", "-v", is_flag=True,
                     help="--stats, and each blob fetched from a registry, with its origin."),
        click.option("--creds", metavar="USER:PASS", envvar="IMAGESCOPE_CREDS",
                     show_envvar=True,
                     help="Registry credentials (default: docker login's, from "
                          "$DOCKER_CONFIG/config.json and its credential helpers)."),
        click.option("--ca-cert", metavar="FILE", type=click.Path(dir_okay=False),
                     help="A CA certificate (PEM) to trust for registries, besides the "
                          "system's."),
        click.option("--insecure-registry", "insecure_registries", metavar="HOST[:PORT]",
                     multiple=True,
                     help="Allow plain http to this registry (loopback ones always are; "
                          "repeatable)."),
    ]):
        command = option(command)
    return command


def _gate_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed([
        click.option("--max-wasted", metavar="SIZE", callback=_parsed(parse_size),
                     help="Fail when wasted bytes exceed SIZE."),
        click.option("--min-efficiency", metavar="RATIO", callback=_parsed(parse_ratio),
                     help="Fail when final/total falls below RATIO (0.9 or 90%)."),
        click.option("--max-size", metavar="SIZE", callback=_parsed(parse_size),
                     help="Fail when the image ships more than SIZE (all layers)."),
        click.option("--fail-on-secrets/--no-fail-on-secrets", default=None,
                     help="Fail when a secret is in the image, alive or in a lower layer."),
        click.option("--ignore", "ignore_globs", metavar="GLOB", multiple=True,
                     help="Leave matching paths out of every waste and secret gate "
                          "(repeatable; e.g. '/var/cache/keep/*')."),
        click.option("--base", "base_reference", metavar="REF",
                     help="The base image: its layers (matched by diff_id) are reported apart."),
        click.option("--own-only/--no-own-only", default=None,
                     help="Gates count only the waste own steps wrote (the base image known "
                          "from --base or the history)."),
    ]):
        command = option(command)
    return command


def _guard_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Guards against hostile input (docs/hostile-input.md)."""
    for option in reversed([
        click.option("--no-verify", is_flag=True,
                     help="Do not check each layer blob read against the digest that names it "
                          "(manifest digest, config diff_id)."),
        click.option("--max-layer-ratio", metavar="N", type=click.IntRange(min=0),
                     default=DEFAULT_MAX_LAYER_RATIO, show_default=True,
                     help=f"Refuse a compressed layer that expands more than N times its "
                          f"compressed size, past {RATIO_FLOOR_BYTES >> 20} MiB (a "
                          "decompression bomb); 0: no limit."),
        click.option("--max-layer-size", metavar="SIZE", callback=_parsed(parse_size),
                     help="Refuse a layer whose uncompressed tar exceeds SIZE (default: no "
                          "limit)."),
    ]):
        command = option(command)
    return command


class _Loader:
    """Loads and analyzes references with the progress, cache and stats the options ask for."""

    def __init__(self, *, pull: str, platform: str | None, progress: bool | None,
                 no_cache: bool, show_stats: bool, limits: ReadLimits | None = None,
                 verbose: bool = False, creds: str | None = None, ca_cert: str | None = None,
                 insecure_registries: tuple[str, ...] = ()) -> None:
        from imagescope.config import load_settings
        from imagescope.sources.access import RegistryAccess
        from imagescope.sources.source import ReadStats
        from imagescope.store.cache import LayerCache

        self.limits = limits
        self.pull = pull
        self.platform = platform
        self.cache = None if no_cache else LayerCache.default(limits)
        refused = self.cache.untrusted() if self.cache is not None else None
        if refused is not None:  # someone else could write what this run would trust
            assert self.cache is not None
            _say(f"imagescope: warning: not using the cache at {self.cache.directory}: "
                 f"{refused}")
            self.cache = None
        self.stats = ReadStats()
        self.show_stats = show_stats or verbose
        self.verbose = verbose
        settings = load_settings().values
        self.registry = RegistryAccess(
            creds=creds, ca_cert=ca_cert or settings.get("ca-cert"),
            insecure=tuple(dict.fromkeys((*insecure_registries,
                                          *settings.get("insecure-registries", ())))))
        self.show_progress = _stderr_is_terminal() if progress is None else progress

    def run(self, call: Callable[..., _T], *args: Any, **extra: Any) -> _T:
        """`call(*args, pull=…, platform=…, progress=…, cache=…, stats=…, **extra)` with live
        progress."""
        options: dict[str, Any] = {"pull": self.pull, "platform": self.platform,
                                   "cache": self.cache, "stats": self.stats,
                                   "limits": self.limits, "registry": self.registry, **extra}
        if self.show_progress:
            from imagescope.render.progress import RichProgress, StderrConsole

            with RichProgress(StderrConsole()) as sink:
                return call(*args, progress=sink, **options)
        return call(*args, **options)

    def report_stats(self) -> None:
        if self.verbose:
            for line in self.stats.fetched:
                _say(f"imagescope: {line}")
        if self.show_stats:
            click.echo(f"imagescope: {self.stats.summary()}", err=True)


def _loader(pull: str, platform: str | None, progress: bool | None, no_cache: bool,
            verbose: bool, creds: str | None, ca_cert: str | None,
            insecure_registries: tuple[str, ...], no_verify: bool, max_layer_ratio: int,
            max_layer_size: int | None, *, show_stats: bool = False) -> _Loader:
    """The `_Loader` of `_source_options` and `_guard_options` as a command received them."""
    return _Loader(pull=pull, platform=platform, progress=progress, no_cache=no_cache,
                   show_stats=show_stats, verbose=verbose, creds=creds, ca_cert=ca_cert,
                   insecure_registries=insecure_registries,
                   limits=ReadLimits(verify=not no_verify, max_layer_ratio=max_layer_ratio,
                                     max_layer_size=max_layer_size))


def _gate_settings(cli_values: dict[str, Any]) -> tuple[GateSettings, str | None]:
    """Gate settings and base reference: the config file's values, overridden by flags."""
    from imagescope.analysis.gates import GateSettings
    from imagescope.config import load_settings

    merged = dict(load_settings().values)
    merged.update({key: value for key, value in cli_values.items()
                   if value is not None and value != ()})
    settings = GateSettings(
        max_wasted=merged.get("max-wasted"),
        min_efficiency=merged.get("min-efficiency"),
        max_size=merged.get("max-size"),
        fail_on_secrets=bool(merged.get("fail-on-secrets", False)),
        max_growth=merged.get("max-growth"),
        max_new_waste=merged.get("max-new-waste"),
        ignore=tuple(merged.get("ignore", ())),
        own_only=bool(merged.get("own-only", False)),
    )
    return settings, merged.get("base")


def _gate_values(max_wasted: int | None, min_efficiency: float | None, max_size: int | None,
                 fail_on_secrets: bool | None, ignore_globs: tuple[str, ...],
                 base_reference: str | None, own_only: bool | None) -> dict[str, Any]:
    return {"max-wasted": max_wasted, "min-efficiency": min_efficiency, "max-size": max_size,
            "fail-on-secrets": fail_on_secrets, "ignore": ignore_globs,
            "base": base_reference, "own-only": own_only}


def _finish(text: str, output: Path | None, results: list[GateResult]) -> None:
    """Write the report, then fail with exit 1 when a gate failed (after the report is out)."""
    _emit(text, output)
    failures = [r for r in results if not r.passed]
    for failure in failures:
        _say(f"imagescope: gate failed: {failure.gate}: {failure.message}")
    if failures:
        sys.exit(ExitCode.GATE_FAILED)


def _page(output: Path | None, top: int) -> Page:
    width, color = _terminal_width(output)
    return Page(top=top, width=width, color=color)


def _terminal_width(output: Path | None) -> tuple[int, bool]:
    """The table width and colour: the terminal's; `COLUMNS` (if a number) or 120 otherwise."""
    to_terminal = output is None and sys.stdout.isatty()
    if not to_terminal:
        columns = os.environ.get("COLUMNS", "")
        return (int(columns) if columns.isdigit() and 40 <= int(columns) <= 1000 else 120), False
    from rich.console import Console

    return Console().width, True


def _stderr_is_terminal() -> bool:
    """Whether rich would treat stderr as a terminal (rich is imported only when it might)."""
    if not sys.stderr.isatty() and not any(os.environ.get(name) for name in
                                           ("FORCE_TERMINAL", "TTY_COMPATIBLE")):
        return False
    from rich.console import Console

    return Console(stderr=True).is_terminal


@cli.command(epilog=_epilog(_INSPECT_EXAMPLES), help="Inspect an image and report its layer waste, findings and "
                                  "recommendations.\n" + _REF_HELP + _GATE_HELP)
@click.argument("reference", metavar="REF")
@_output_options
@_source_options
@_guard_options
@_gate_options
@click.option("--dockerfile", metavar="PATH", type=click.Path(dir_okay=False),
              help="The Dockerfile the image was built from: each layer is shown with its "
                   "Dockerfile:LINE and text (a mismatch is reported, never guessed), and a "
                   "suggested Dockerfile is made (--format patch, or in the Markdown report).")
@click.option("--context", "context", metavar="DIR", type=click.Path(file_okay=False),
              help="The build context: its Dockerfile is the default --dockerfile, its "
                   ".dockerignore the one the suggestion extends.")
def inspect(reference: str, output_format: str, output: Path | None, top: int, pull: str,
            platform: str | None, progress: bool | None, no_cache: bool, show_stats: bool,
            verbose: bool, creds: str | None, ca_cert: str | None,
            insecure_registries: tuple[str, ...],
            no_verify: bool, max_layer_ratio: int, max_layer_size: int | None,
            max_wasted: int | None, min_efficiency: float | None, max_size: int | None,
            fail_on_secrets: bool | None, ignore_globs: tuple[str, ...],
            base_reference: str | None, own_only: bool | None,
            dockerfile: str | None, context: str | None) -> None:
    from imagescope import api
    from imagescope.analysis.gates import check_report

    settings, base = _gate_settings(_gate_values(max_wasted, min_efficiency, max_size,
                                                 fail_on_secrets, ignore_globs, base_reference,
                                                 own_only))
    _check_output_path(output)
    loader = _loader(pull, platform, progress, no_cache, verbose, creds, ca_cert,
                     insecure_registries, no_verify, max_layer_ratio, max_layer_size,
                     show_stats=show_stats)
    named = api.BaseRef.of(loader.run(api.inspect, base)) if base else None
    instructions = None
    in_context = _context_dockerfile(context)
    dockerfile = dockerfile or _configured_dockerfile() or in_context
    if dockerfile is not None:
        from imagescope.dockerfile import parse_dockerfile_text, read_dockerfile

        dockerfile_text = read_dockerfile(dockerfile)  # (before the image: fail fast)
        instructions = parse_dockerfile_text(dockerfile_text, f"--dockerfile {dockerfile}")
    report = loader.run(api.inspect, reference, base=named)
    if instructions is not None:
        from imagescope.analysis.dockerfile_map import map_layers
        from imagescope.analysis.report import base_layers, with_dockerfile

        assert dockerfile is not None
        report = with_dockerfile(report, map_layers(
            dockerfile, instructions, [layer.created_by for layer in report.layers],
            base_layers(report) if report.base is not None else None))
        report = _with_suggestion(report, dockerfile, instructions, context, dockerfile_text)
    elif report.dockerfile is not None and report.dockerfile.text is not None:
        from imagescope.dockerfile import parse_dockerfile_text

        report = _with_suggestion(report, report.dockerfile.path, parse_dockerfile_text(
            report.dockerfile.text, report.dockerfile.path), context, report.dockerfile.text)
    loader.report_stats()
    results = check_report(report, settings)
    from imagescope.render import renderer

    text = renderer(output_format).report(report, results, _page(output, top))
    _finish(text, output, results)


@cli.command(epilog=_epilog(_DIFF_EXAMPLES), help="""Compare two versions of an image: sizes, shared layers,
    steps, final files and findings.

    OLD and NEW take any REF `inspect` takes, mixed freely (an engine image against an archive,
    say). Gates apply to NEW, plus --max-growth and --max-new-waste.
""" + _REF_HELP + _GATE_HELP)
@click.argument("old_reference", metavar="OLD")
@click.argument("new_reference", metavar="NEW")
@_output_options
@_source_options
@_guard_options
@_gate_options
@click.option("--max-growth", metavar="SIZE|PERCENT", callback=_parsed(parse_growth),
              help="Fail when NEW ships more than SIZE (or PERCENT of OLD) over OLD.")
@click.option("--max-new-waste", metavar="SIZE", callback=_parsed(parse_size),
              help="Fail when NEW has more than SIZE of waste that OLD did not have.")
def diff(old_reference: str, new_reference: str, output_format: str, output: Path | None,
         top: int, pull: str, platform: str | None, progress: bool | None, no_cache: bool,
         show_stats: bool, verbose: bool, creds: str | None, ca_cert: str | None,
         insecure_registries: tuple[str, ...], no_verify: bool, max_layer_ratio: int,
         max_layer_size: int | None,
         max_wasted: int | None, min_efficiency: float | None,
         max_size: int | None, fail_on_secrets: bool | None, ignore_globs: tuple[str, ...],
         base_reference: str | None, own_only: bool | None, max_growth: Growth | None,
         max_new_waste: int | None) -> None:
    from imagescope import api
    from imagescope.analysis.gates import check_diff

    values = _gate_values(max_wasted, min_efficiency, max_size, fail_on_secrets, ignore_globs,
                          base_reference, own_only)
    values.update({"max-growth": max_growth, "max-new-waste": max_new_waste})
    settings, base = _gate_settings(values)
    _check_output_path(output)
    loader = _loader(pull, platform, progress, no_cache, verbose, creds, ca_cert,
                     insecure_registries, no_verify, max_layer_ratio, max_layer_size,
                     show_stats=show_stats)
    named = api.BaseRef.of(loader.run(api.inspect, base)) if base else None
    changes, old, new = loader.run(api.compare, old_reference, new_reference, base=named)
    loader.report_stats()
    results = check_diff(changes, old, new, settings)
    from imagescope.render import renderer

    text = renderer(output_format).diff(changes, results, _page(output, top))
    _finish(text, output, results)


_CAT_EXAMPLES = """\
  imagescope cat myapp:1.4 /etc/os-release
  imagescope cat image.tar /root/.cache/pip/http/x --layer 3   (a file a later layer deleted)
  imagescope cat docker://reg.example/app:1.4 /app/main.py > main.py"""

_EXPORT_EXAMPLES = """\
  imagescope export myapp:1.4 /app -o out/              (out/app/...)
  imagescope export image.tar /etc/passwd /etc/group -o - | tar -t
  imagescope export myapp:1.4 /build --layer 2 -o build-step/"""

_LAYER_OPTION = click.option(
    "--layer", type=click.IntRange(min=0), metavar="N",
    help="Read the image as of layer N (0 is the bottom one): what the layers up to N made, "
         "files later layers deleted or overwrote included. Default: the final image.")
_SHOW_SECRET_OPTION = click.option(
    "--show-secret", is_flag=True,
    help="Write the content of a file a finding says holds a secret (refused otherwise).")



def _refuse_secrets(analysis: Any, paths: list[str], show_secret: bool) -> None:
    """UsageError naming the first of `paths` (absolute) a secret finding names."""
    if show_secret:
        return
    from imagescope.analysis.findings.model import Category

    wanted = set(paths)
    for finding in analysis.report.findings:
        if finding.category is not Category.SECRET:
            continue
        for ref in finding.files:
            if ref.path in wanted:
                where = (f"hidden by layer {ref.hidden_by}, still in layer {ref.layer_index}"
                         if ref.hidden_by is not None else f"written by layer {ref.layer_index}")
                raise UsageError(f"{ref.path} holds a secret ({finding.subject}; {where}): "
                                 "its content is written only with --show-secret")


@cli.command(epilog=_epilog(_CAT_EXAMPLES), help="""Write a file's bytes to stdout, from the final image or as of a layer.

    PATH is the file's path in the image; symlinks are followed inside the image (an absolute
    target starts at the image's root, never the host's). With --layer N the image is read as
    of layer N, so a file a later step deleted or overwrote can still be read: what `inspect`
    reports as waste. The bytes are checked against the size (and content digest) the analysis
    saw.
""" + _REF_HELP)
@click.argument("reference", metavar="REF")
@click.argument("path", metavar="PATH")
@_LAYER_OPTION
@_SHOW_SECRET_OPTION
@_source_options
@_guard_options
def cat(reference: str, path: str, layer: int | None, show_secret: bool, pull: str,
        platform: str | None, progress: bool | None, no_cache: bool, show_stats: bool,
        verbose: bool, creds: str | None, ca_cert: str | None,
        insecure_registries: tuple[str, ...], no_verify: bool, max_layer_ratio: int,
        max_layer_size: int | None) -> None:
    from imagescope import api

    if sys.stdout is None:
        raise OutputError("cannot write to stdout: it is closed")
    loader = _loader(pull, platform, progress, no_cache, verbose, creds, ca_cert,
                           insecure_registries, no_verify, max_layer_ratio, max_layer_size)
    with loader.run(api.opened, reference) as image:
        found = image.files.locate(path, layer)
        if found.found.is_dir:
            raise PathNotFound(f"/{found.asked}: is a directory (export writes directories)")
        content = found.found.content  # (a hardlink's secret is the file's)
        _refuse_secrets(image.analysis, [f"/{found.found.path}"]
                        + ([f"/{content.path}"] if content is not None else []), show_secret)
        out = sys.stdout.buffer

        def write(data: bytes) -> None:
            out.write(data)

        try:
            image.files.read(found.found, write)
            out.flush()
        except BrokenPipeError:
            raise _PipeClosed from None
        except OSError as exc:
            if isinstance(exc, ImagescopeError):
                raise
            _discard(sys.stdout)
            raise OutputError(f"cannot write to stdout: {exc.strerror or exc}") from None


@cli.command(epilog=_epilog(_EXPORT_EXAMPLES), help="""Extract files or whole directories of an image into a directory, or as a tar.

    Each PATH is written at its image path under DIR (`/etc/passwd` becomes DIR/etc/passwd;
    DIR is created when missing, its parent must exist), or, with `-o -`, as a tar on stdout.
    Extraction is safe: nothing is written outside DIR, no symlink (in the image or in DIR) is
    followed, device nodes and FIFOs are refused, hardlinks become copies; permission bits are
    kept (not setuid/setgid), owners only with --same-owner.
""" + _REF_HELP)
@click.argument("reference", metavar="REF")
@click.argument("paths", metavar="PATH...", nargs=-1, required=True)
@click.option("-o", "--output", "target", metavar="DIR|-", required=True,
              help="The directory to write into, or - for a tar on stdout.")
@_LAYER_OPTION
@_SHOW_SECRET_OPTION
@click.option("--same-owner", is_flag=True,
              help="Give files the image's owners (uid, gid): needs root.")
@_source_options
@_guard_options
def export(reference: str, paths: tuple[str, ...], target: str, layer: int | None,
           show_secret: bool, same_owner: bool, pull: str, platform: str | None,
           progress: bool | None, no_cache: bool, show_stats: bool, verbose: bool,
           creds: str | None, ca_cert: str | None, insecure_registries: tuple[str, ...],
           no_verify: bool, max_layer_ratio: int, max_layer_size: int | None) -> None:
    from imagescope import api
    from imagescope.export import to_directory, to_tar

    if target != "-":
        _check_export_target(Path(target))
    loader = _loader(pull, platform, progress, no_cache, verbose, creds, ca_cert,
                           insecure_registries, no_verify, max_layer_ratio, max_layer_size)
    with loader.run(api.opened, reference) as image:
        names = []
        for path in paths:
            found = image.files.locate(path, layer, follow_last=False)
            names.extend(image.files.walk(found.found, layer))
        names = list({name.path: name for name in names}.values())  # a PATH inside another
        names.sort(key=lambda name: name.path.split("/"))
        _refuse_secrets(image.analysis, [f"/{path}" for name in names if name.content is not None
                                         for path in (name.path, name.content.path)],
                        show_secret)
        if target == "-":
            try:
                done = to_tar(image.files, names, sys.stdout.buffer)
            except BrokenPipeError:
                raise _PipeClosed from None
        else:
            Path(target).mkdir(exist_ok=True)
            done = to_directory(image.files, names, target, same_owner=same_owner)
    for refused in done.refused:
        _say(f"imagescope: skipped {refused}: device nodes and FIFOs are not extracted")
    if target != "-":
        _say(f"imagescope: wrote {done.files:,} files ({done.bytes:,} bytes), "
             f"{done.directories:,} directories, {done.symlinks:,} symlinks under {target}")


@cli.command(help="""Explore an image interactively: layers, the file tree of each, the waste first.

    Needs the `tui` extra: pip install 'imagescope[tui]'. Keys: arrows and Enter, Tab between
    panes, `a` the layer's entries or the image as of it, `w` only waste, `c` only changes,
    `s` sort, `/` filter, `?` help, `q` quit. The mouse works too.
""" + _REF_HELP)
@click.argument("reference", metavar="REF")
@_source_options
@_guard_options
def browse(reference: str, pull: str, platform: str | None, progress: bool | None,
           no_cache: bool, show_stats: bool, verbose: bool, creds: str | None,
           ca_cert: str | None, insecure_registries: tuple[str, ...], no_verify: bool,
           max_layer_ratio: int, max_layer_size: int | None) -> None:
    try:
        from imagescope.browse.app import BrowseApp
    except ImportError as exc:
        if exc.name is None or not exc.name.startswith("textual"):
            raise
        raise UsageError("imagescope browse needs Textual: pip install 'imagescope[tui]'"
                         ) from None
    from imagescope import api

    if not sys.stdin.isatty() or not sys.stdout.isatty():
        raise UsageError("imagescope browse needs a terminal (stdin and stdout); "
                         "use inspect, cat or export in scripts")
    loader = _loader(pull, platform, progress, no_cache, verbose, creds, ca_cert,
                           insecure_registries, no_verify, max_layer_ratio, max_layer_size)
    with loader.run(api.opened, reference) as image:
        # the run disabled the collector for the load (`main`); an interactive app makes
        # cycles: collect them again, but never walk the image's millions of objects
        gc.freeze()
        gc.enable()
        BrowseApp(image).run()


def _context_dockerfile(context: str | None) -> str | None:
    """`Dockerfile` in the build context, when one is given and it has one."""
    if context is None:
        return None
    if not os.path.isdir(context):
        raise SourceNotFound(f"--context {context}: no such directory")
    path = os.path.join(context, "Dockerfile")
    if os.path.isdir(path):
        raise UsageError(f"--context {context}: its Dockerfile is a directory")
    return path if os.path.exists(path) else None


def _with_suggestion(report: Report, dockerfile: str, instructions: list[Instruction],
                     context: str | None, text: str) -> Report:
    """`report` with the suggested Dockerfile, when the layers match the Dockerfile (`text`,
    parsed: `instructions`). An unreadable .dockerignore is a warning and no suggestion: the
    report does not need one."""
    import dataclasses

    from imagescope.analysis.suggest import suggest

    mapped = report.dockerfile
    if mapped is None or mapped.mismatch is not None:
        return report
    ignore_path = os.path.join(context if context is not None else os.path.dirname(dockerfile),
                               ".dockerignore")
    ignore: str | None
    try:
        with open(ignore_path, encoding="utf-8", newline="") as file:
            ignore = file.read()
    except FileNotFoundError:
        ignore = None
    except (OSError, UnicodeDecodeError) as exc:
        return dataclasses.replace(report, warnings=[
            *report.warnings, f"no suggested Dockerfile: cannot read {ignore_path} ({exc})"])
    return dataclasses.replace(report, suggestion=suggest(report, mapped, instructions, text,
                                                          ignore, ignore_path))


def _configured_dockerfile() -> str | None:
    """The config file's `dockerfile`, relative to the file's directory; None when unset."""
    from imagescope.config import load_settings

    found = load_settings()
    value = found.values.get("dockerfile")
    if value is None or found.path is None:
        return None
    return str(found.path.parent / value)


def _check_export_target(target: Path) -> None:
    parent = target.parent if str(target.parent) else Path(".")
    if target.exists() and not target.is_dir():
        raise OutputError(f"cannot write to {target}: it is not a directory")
    if not parent.is_dir():
        raise OutputError(f"cannot write to {target}: directory {parent} does not exist")


def _say(line: str) -> None:
    """One line on stderr; what it quotes (image data, arguments) escaped as reports escape it."""
    from imagescope.render.text import printable

    click.echo(printable(line), err=True)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: one line on stderr and a distinct exit code for every failure.

    A closed pipe (`imagescope inspect … | head -1`) ends the run quietly, as it ends `cat` or
    `grep`: no message, no traceback, and status 141 (ExitCode.BROKEN_PIPE), the 128 + SIGPIPE
    a shell reports for a tool the signal stopped. Not 0: the report was cut short, and
    `set -o pipefail` scripts should see that as they do for any other tool. The status is
    exited with rather than the signal restored and taken: a signal would stop the run wherever
    it was writing (a cache entry, a worker), where an exit unwinds cleanly.
    """
    # A run builds millions of objects without cycles and then exits: the cyclic collector's
    # passes over them would cost a third of a run, and find nothing worth freeing.
    gc.disable()
    try:
        cli.main(args=argv, prog_name="imagescope", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        hint = ""
        if isinstance(exc, click.UsageError) and exc.ctx is not None:
            hint = f" (see '{exc.ctx.command_path} --help')"
        _say(f"imagescope: error: {exc.format_message()}{hint}")
        sys.exit(ExitCode.USAGE)
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("imagescope: interrupted", err=True)
        sys.exit(ExitCode.INTERRUPTED)
    except ImagescopeError as exc:
        _say(f"imagescope: error: {exc}")
        sys.exit(exc.exit_code)
    except (_PipeClosed, BrokenPipeError):
        _discard(sys.stdout)
        _discard(sys.stderr)
        sys.exit(ExitCode.BROKEN_PIPE)
    except Exception as exc:
        if os.environ.get("IMAGESCOPE_DEBUG"):
            raise
        _say(f"imagescope: internal error: {type(exc).__name__}: {exc} "
             "(please report it; IMAGESCOPE_DEBUG=1 shows the traceback)")
        sys.exit(ExitCode.INTERNAL_ERROR)
    sys.exit(ExitCode.OK)
