"""Compare two imagescope JSON reports: identical text, or the first paths where they differ.

`python -m bench.samejson OLD.json NEW.json` — used to check that an optimisation left every
figure unchanged.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def differences(a: Any, b: Any, path: str = "$", out: list[str] | None = None,
                limit: int = 20) -> list[str]:
    out = [] if out is None else out
    if len(out) >= limit:
        return out
    if type(a) is not type(b):
        out.append(f"{path}: {a!r:.80} != {b!r:.80}")
    elif isinstance(a, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                out.append(f"{path}.{key}: only in {'new' if key in b else 'old'}")
            else:
                differences(a[key], b[key], f"{path}.{key}", out, limit)
    elif isinstance(a, list):
        if len(a) != len(b):
            out.append(f"{path}: {len(a)} items != {len(b)} items")
        for i, (x, y) in enumerate(zip(a, b)):
            differences(x, y, f"{path}[{i}]", out, limit)
    elif a != b:
        out.append(f"{path}: {a!r:.80} != {b!r:.80}")
    return out


def main(argv: list[str] | None = None) -> int:
    old_path, new_path = (argv or sys.argv[1:])[:2]
    old_text, new_text = Path(old_path).read_text(), Path(new_path).read_text()
    if old_text == new_text:
        print(f"identical ({len(old_text):,} bytes)")
        return 0
    found = differences(json.loads(old_text), json.loads(new_text))
    print("\n".join(found) if found else "same document, different text")
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
