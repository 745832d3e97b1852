"""What reading an untrusted image may cost, and whether its blobs are checked against their
digests: the guards every source applies while it reads layers.

Rules:
- A compressed layer is refused once its uncompressed tar has passed both `RATIO_FLOOR_BYTES`
  and `max_layer_ratio` times the compressed bytes read so far (a decompression bomb: gzip peaks
  near 1030:1, zstd near 32000:1; real layers compress 2-10:1). 0 turns the ratio check off.
- Any layer whose uncompressed tar passes `max_layer_size` bytes is refused (None: no limit).
- With `verify`, every blob read is hashed in the same pass and must hash to the digest that
  names it (see `sources.blobs.expected_digests`); a layer served from the cache was verified
  when it was stored and is not read, hence not verified, again.
"""

from __future__ import annotations

from dataclasses import dataclass

from imagescope.errors import LayerTooLarge

DEFAULT_MAX_LAYER_RATIO = 1000
RATIO_FLOOR_BYTES = 64 << 20  # below this a layer may expand at any ratio


@dataclass(frozen=True, slots=True)
class ReadLimits:
    """The guards of one load; the defaults never trip on a real image (module docstring)."""

    verify: bool = True
    max_layer_ratio: int = DEFAULT_MAX_LAYER_RATIO
    max_layer_size: int | None = None

    def check_expansion(self, label: str, uncompressed: int, compressed: int) -> None:
        """Refuse a compressed layer that has expanded past the ratio or the size allowed."""
        ratio = self.max_layer_ratio
        if ratio and uncompressed > RATIO_FLOOR_BYTES and uncompressed > ratio * compressed:
            raise LayerTooLarge(
                f"{label}: decompresses to more than {ratio}x its compressed size "
                f"({_mib(uncompressed)} from {_mib(compressed)} so far), as a decompression "
                "bomb does; raise --max-layer-ratio (0: no limit) to read it anyway")
        self.check_size(label, uncompressed)

    def check_size(self, label: str, uncompressed: int) -> None:
        """Refuse a layer whose uncompressed tar has passed `max_layer_size`."""
        limit = self.max_layer_size
        if limit is not None and uncompressed > limit:
            raise LayerTooLarge(
                f"{label}: its uncompressed tar is larger than --max-layer-size {limit} bytes "
                f"(at least {uncompressed} bytes); raise the limit to read it")


def _mib(nbytes: int) -> str:
    if nbytes >= 1 << 20:
        return f"{nbytes / (1 << 20):.1f} MiB"
    return f"{nbytes} bytes"


__all__ = ["DEFAULT_MAX_LAYER_RATIO", "RATIO_FLOOR_BYTES", "ReadLimits"]
