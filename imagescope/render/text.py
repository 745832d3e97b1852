"""Text every human renderer shares: sizes for people, and image text made safe to print."""

from __future__ import annotations

import humanize


def size(nbytes: int | None) -> str:
    """Binary-unit size for people; exact figures live in the JSON output."""
    if nbytes is None:
        return "-"
    if nbytes < 1024:
        return f"{nbytes} B"
    return humanize.naturalsize(nbytes, binary=True, format="%.1f")


def signed(nbytes: int) -> str:
    """A size change with its sign; `±0 B` for none."""
    if nbytes == 0:
        return "±0 B"
    return ("+" if nbytes > 0 else "−") + size(abs(nbytes))


# C0 and C1 control characters and DEL: a name could otherwise move the cursor, clear the screen,
# open a hyperlink (OSC 8) or break a table row. Bidirectional overrides and isolates: they would
# reorder what follows them on screen (`txt.exe` shown as `exe.txt`).
_CONTROL_ESCAPES = {code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0))}
_CONTROL_ESCAPES |= {code: f"\\u{code:04x}" for code in (0x061C, 0x200E, 0x200F,
                                                           *range(0x202A, 0x202F),
                                                           *range(0x2066, 0x206A))}


def printable(path: str) -> str:
    """Text from the image made safe to print: undecodable bytes and control characters shown
    as \\xNN escapes, bidirectional controls as \\uNNNN.

    Every renderer passes what it takes from the image (paths, instructions, references, titles
    quoting them) through here; rich markup in it is kept literal by wrapping it in `Text`
    (`terminal.literal`), never in a markup string.
    """
    text = path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return text.translate(_CONTROL_ESCAPES)


def one_line(text: str) -> str:
    """Prose on one line: whitespace runs (line breaks, CR included) as one space, escaped."""
    return printable(" ".join(text.split()))


def clip(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, an ellipsis marking the cut."""
    return text if len(text) <= limit else text[:limit - 1] + "…"
