from collections.abc import Callable
from typing import Any

def scan(buffer: bytes, at: int, entries: list[Any], entry_type: type[Any],
         kinds: tuple[Any, ...], capture: Callable[[str, int], bool] | None,
         hasher: Callable[[Any], bytes], hash_contents: bool,
         offset_origin: int | None, /) -> int: ...
