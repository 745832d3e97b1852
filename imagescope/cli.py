"""Command line: parse, call the library, render, choose the exit code — no analysis here."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from rich.console import Console

from imagescope import __version__
from imagescope.errors import ExitCode, ImagescopeError, OutputError

_FORMATS = ("table", "json", "markdown")


def _check_output_path(output: Path | None) -> None:
    """Fail before the (possibly long) analysis when the output cannot be written."""
    if output is None:
        return
    parent = output.parent if str(output.parent) else Path(".")
    if output.is_dir():
        raise OutputError(f"cannot write {output}: it is a directory")
    if not parent.is_dir():
        raise OutputError(f"cannot write {output}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK) or (output.exists() and not os.access(output, os.W_OK)):
        raise OutputError(f"cannot write {output}: permission denied")


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"cannot write {output}: {exc.strerror or exc}") from None


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "-V", "--version", prog_name="imagescope")
def cli() -> None:
    """Measure the real layer waste of container images, to the byte.

    Bytes written in one layer and deleted or overwritten in a later one still ship with every
    pull. imagescope replays the layers as an overlay filesystem does and reports exactly which
    files were hidden, by which Dockerfile step, and how many bytes that costs.
    """


@cli.command()
@click.argument("reference", metavar="REF")
@click.option("--format", "output_format", type=click.Choice(_FORMATS), default="table",
              show_default=True, help="Report format.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the report to FILE instead of stdout.")
@click.option("--top", type=click.IntRange(min=0), default=10, show_default=True,
              help="How many findings, recommendations and largest wasted files to list "
                   "(table, markdown).")
@click.option("--pull", type=click.Choice(["missing", "always", "never"]), default="missing",
              show_default=True, help="Engine images: when to pull from the registry.")
@click.option("--platform", metavar="OS/ARCH[/VARIANT]",
              help="Platform to pick from a multi-platform image (default: this host's).")
@click.option("--progress/--no-progress", default=None,
              help="Show progress on stderr (default: when stderr is a terminal).")
@click.option("--no-cache", is_flag=True,
              help="Neither use nor fill the layer analysis cache ($XDG_CACHE_HOME/imagescope).")
@click.option("--stats", "show_stats", is_flag=True,
              help="Print on stderr how many layers were read and how many came from the cache.")
def inspect(reference: str, output_format: str, output: Path | None, top: int, pull: str,
            platform: str | None, progress: bool | None, no_cache: bool,
            show_stats: bool) -> None:
    """Inspect an image and report its layer waste.

    \b
    REF is any of:
      name[:tag], name@sha256:...   an image in the local Docker engine (DOCKER_HOST honoured)
      PATH.tar                      a `docker save` archive or an OCI archive
      DIR                           an OCI image layout (oci-layout + index.json)
      docker:NAME  docker-archive:PATH[:TAG]  oci:DIR[:TAG]  oci-archive:PATH[:TAG]
    """
    from imagescope.api import inspect as inspect_image
    from imagescope.cache import LayerCache, ReadStats

    _check_output_path(output)
    err_console = Console(stderr=True)
    show_progress = err_console.is_terminal if progress is None else progress
    cache = None if no_cache else LayerCache.default()
    stats = ReadStats()
    if show_progress:
        from imagescope.render.progress import RichProgress

        with RichProgress(err_console) as sink:
            report = inspect_image(reference, pull=pull, platform=platform, progress=sink,
                                   cache=cache, stats=stats)
    else:
        report = inspect_image(reference, pull=pull, platform=platform, cache=cache,
                               stats=stats)
    if show_stats:
        click.echo(f"imagescope: {stats.summary()}", err=True)

    if output_format == "json":
        from imagescope.render import json as json_render

        text = json_render.render(report)
    elif output_format == "markdown":
        from imagescope.render import markdown

        text = markdown.render(report, top=top)
    else:
        from imagescope.render import terminal

        to_terminal = output is None and sys.stdout.isatty()
        width = Console().width if to_terminal else 120
        text = terminal.render(report, top=top, width=width, color=to_terminal)
    _emit(text, output)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: one line on stderr and a distinct exit code for every failure."""
    try:
        cli.main(args=argv, prog_name="imagescope", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        hint = ""
        if isinstance(exc, click.UsageError) and exc.ctx is not None:
            hint = f" (see '{exc.ctx.command_path} --help')"
        click.echo(f"imagescope: error: {exc.format_message()}{hint}", err=True)
        sys.exit(ExitCode.USAGE)
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("imagescope: interrupted", err=True)
        sys.exit(ExitCode.INTERRUPTED)
    except ImagescopeError as exc:
        click.echo(f"imagescope: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        sys.stderr.close()
        sys.exit(ExitCode.OK)
    except Exception as exc:
        if os.environ.get("IMAGESCOPE_DEBUG"):
            raise
        click.echo(f"imagescope: internal error: {type(exc).__name__}: {exc} "
                   "(please report it; IMAGESCOPE_DEBUG=1 shows the traceback)", err=True)
        sys.exit(ExitCode.INTERNAL_ERROR)
    sys.exit(ExitCode.OK)
