"""Orders and dedupes of file records done in C-level passes equal the plain Python rules."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from imagescope.analysis.findings.model import FileRef, unique_refs
from imagescope.records import largest_first

refs = st.lists(st.builds(FileRef, st.sampled_from(["/a", "/b", "/c/d", "/C"]),
                          st.integers(0, 3), st.integers(0, 2),
                          st.none() | st.integers(0, 2)), max_size=30)


@given(refs)
def test_largest_first_is_the_order_of_bytes_down_then_path_then_layer(files: list[FileRef]
                                                                         ) -> None:
    expected = sorted(files, key=lambda r: (-r.bytes, r.path, r.layer_index))
    assert largest_first(files) == expected


@given(refs)
def test_unique_refs_keep_the_first_ref_of_each_content(files: list[FileRef]) -> None:
    first: dict[tuple[int, str], FileRef] = {}
    for ref in files:
        first.setdefault(ref.key, ref)
    assert sorted(unique_refs(files)) == sorted(first.values())
    assert sorted(unique_refs(iter(files))) == sorted(first.values())  # any iterable
