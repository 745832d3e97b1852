"""A Dockerfile read with the parser Docker and BuildKit use (the `dockerfile` package wraps
moby/buildkit's Go parser), as `analysis.dockerfile_map.Instruction`s."""

from __future__ import annotations

from imagescope.analysis.dockerfile_map import Instruction
from imagescope.errors import SourceNotFound, UsageError


def parse_dockerfile(path: str) -> list[Instruction]:
    """The instructions of the Dockerfile at `path`; one-line errors when it cannot be read."""
    return parse_dockerfile_text(read_dockerfile(path), f"--dockerfile {path}")


def read_dockerfile(path: str) -> str:
    """The text of the Dockerfile at `path`, line ends as written; one-line errors."""
    try:
        with open(path, encoding="utf-8", newline="") as file:
            return file.read()
    except FileNotFoundError:
        raise SourceNotFound(f"--dockerfile {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--dockerfile {path}: cannot read it ({exc})") from None


def parse_dockerfile_text(text: str, name: str) -> list[Instruction]:
    """The instructions of Dockerfile `text`; `name` says which in the UsageError raised when
    it is not one."""
    import dockerfile

    try:
        commands = dockerfile.parse_string(text)
    except dockerfile.GoParseError as exc:
        raise UsageError(f"{name}: not a Dockerfile ({' '.join(str(exc).split())})") from None
    return [Instruction(command.cmd.upper(), command.original, tuple(command.value),
                        tuple(command.flags), command.start_line, command.end_line,
                        bool(command.json))
            for command in commands]
