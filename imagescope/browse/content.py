"""A file's head as the browser shows it: text as text, anything else as a hex dump (pure)."""

from __future__ import annotations

HEX_BYTES = 512  # of a binary file, the bytes dumped
_TEXT_CONTROLS = frozenset(b"\t\n\r\f\b\x1b")


def preview(head: bytes, total: int) -> str:
    """`head` (the first bytes of a `total`-byte file): UTF-8 text without NUL or stray
    control bytes is shown as it is; other bytes as a hex dump of the first HEX_BYTES."""
    if is_text(head):
        text = head.decode("utf-8", "replace")
        more = total - len(head)
        return text + (f"\n… {more:,} more bytes" if more > 0 else "")
    lines = []
    for offset in range(0, min(len(head), HEX_BYTES), 16):
        row = head[offset:offset + 16]
        hexes = " ".join(f"{byte:02x}" for byte in row)
        chars = "".join(chr(byte) if 32 <= byte < 127 else "." for byte in row)
        lines.append(f"{offset:08x}  {hexes:<47}  {chars}")
    if total > HEX_BYTES:
        lines.append(f"… binary, {total:,} bytes in all")
    return "\n".join(lines) if lines else "(empty)"


def is_text(head: bytes) -> bool:
    if b"\0" in head:
        return False
    if any(byte < 32 and byte not in _TEXT_CONTROLS for byte in head):
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 3  # a character cut at the end of the head
    return True
