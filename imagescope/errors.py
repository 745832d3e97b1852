"""One exception tree; each class carries its exit code and a one-line message for the user."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit status. 1 is reserved for a failed CI gate; errors start at 2."""

    OK = 0
    GATE_FAILED = 1
    USAGE = 2
    SOURCE_NOT_FOUND = 3
    NOT_AN_IMAGE = 4
    CORRUPT_ARCHIVE = 5
    MISSING_BLOB = 6
    UNSUPPORTED_MEDIA_TYPE = 7
    PLATFORM_NOT_FOUND = 8
    IMAGE_NOT_FOUND = 9
    PULL_FAILED = 10
    ENGINE_UNREACHABLE = 11
    ENGINE_ERROR = 12
    OUTPUT_ERROR = 13
    CONFIG_ERROR = 14
    LAYER_TOO_LARGE = 15
    DIGEST_MISMATCH = 16
    REGISTRY_UNREACHABLE = 17
    REGISTRY_AUTH = 18
    REGISTRY_ERROR = 19
    PATH_NOT_FOUND = 20
    INTERNAL_ERROR = 70  # a bug, never bad input: the message asks for a report
    INTERRUPTED = 130
    BROKEN_PIPE = 141  # 128 + SIGPIPE: stdout's reader went away (`| head`); nothing is printed


class ImagescopeError(Exception):
    """Root of every error imagescope reports; `str(err)` is the one line shown to the user."""

    exit_code: ExitCode = ExitCode.USAGE


class UsageError(ImagescopeError):
    exit_code = ExitCode.USAGE


class SourceNotFound(ImagescopeError):
    exit_code = ExitCode.SOURCE_NOT_FOUND


class NotAnImage(ImagescopeError):
    exit_code = ExitCode.NOT_AN_IMAGE


class CorruptArchive(ImagescopeError):
    exit_code = ExitCode.CORRUPT_ARCHIVE


class MissingBlob(ImagescopeError):
    exit_code = ExitCode.MISSING_BLOB


class UnsupportedMediaType(ImagescopeError):
    exit_code = ExitCode.UNSUPPORTED_MEDIA_TYPE


class PlatformNotFound(ImagescopeError):
    exit_code = ExitCode.PLATFORM_NOT_FOUND


class ImageNotFound(ImagescopeError):
    exit_code = ExitCode.IMAGE_NOT_FOUND


class PullFailed(ImagescopeError):
    exit_code = ExitCode.PULL_FAILED


class EngineUnreachable(ImagescopeError):
    exit_code = ExitCode.ENGINE_UNREACHABLE


class EngineError(ImagescopeError):
    exit_code = ExitCode.ENGINE_ERROR


class OutputError(ImagescopeError):
    exit_code = ExitCode.OUTPUT_ERROR


class ConfigError(ImagescopeError):
    exit_code = ExitCode.CONFIG_ERROR


class LayerTooLarge(ImagescopeError):
    """A layer decompresses past the ratio or size `ReadLimits` allows (a decompression bomb)."""

    exit_code = ExitCode.LAYER_TOO_LARGE


class DigestMismatch(ImagescopeError):
    """A blob's bytes do not hash to the digest the manifest or the config names for it."""

    exit_code = ExitCode.DIGEST_MISMATCH


class RegistryUnreachable(ImagescopeError):
    """No answer from the registry: refused, unresolvable, timed out, or TLS failed."""

    exit_code = ExitCode.REGISTRY_UNREACHABLE


class RegistryAuthFailed(ImagescopeError):
    """The registry (or its token service) refused the credentials or the access: 401/403."""

    exit_code = ExitCode.REGISTRY_AUTH


class RegistryError(ImagescopeError):
    """The registry answered, but not with what the distribution API says (5xx or 429 after
    every retry, an unexpected status, a malformed token response)."""

    exit_code = ExitCode.REGISTRY_ERROR


class PathNotFound(ImagescopeError):
    """A path `cat`, `export` or `browse` was asked for is not in the image (as of the layer
    asked), or cannot be read from it (a directory to `cat`, a device node)."""

    exit_code = ExitCode.PATH_NOT_FOUND
