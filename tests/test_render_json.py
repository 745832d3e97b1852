"""The JSON writer gives `json.dumps(obj, indent=2)` byte for byte, lists of records given as rows
or columns included; records kept as columns behave as the sequence they stand for."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imagescope.analysis.findings.model import FileRef
from imagescope.analysis.overlay import HiddenHow
from imagescope.analysis.report import WastedFile
from imagescope.records import Records
from imagescope.render import jsontext

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(),
                    st.floats(allow_nan=False, allow_infinity=False), st.text())
DOCUMENTS = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=5), inner, max_size=4)),
    max_leaves=30)


def expected(obj: Any) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=True)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(DOCUMENTS)
def test_any_document_is_written_as_json_dumps_writes_it(obj: Any) -> None:
    assert jsontext.dumps(obj) == expected(obj)


@settings(max_examples=200, derandomize=True, deadline=None)
@given(st.lists(st.tuples(st.text(), st.integers(), st.one_of(st.none(), st.integers()),
                          st.booleans(), st.floats(allow_nan=False)), max_size=6))
def test_rows_are_written_as_their_records(rows: list[tuple[Any, ...]]) -> None:
    keys = ("path", "bytes", "hidden_by", "flag", "ratio")
    columns = tuple(list(column) for column in zip(*rows, strict=True)) or tuple([] for _ in keys)
    table = jsontext.Rows(keys, columns)
    records = [dict(zip(keys, row, strict=True)) for row in rows]
    assert table.records == records and table == records
    assert jsontext.dumps({"files": table, "n": len(rows)}) == expected(
        {"files": records, "n": len(rows)})
    assert jsontext.dumps([table]) == expected([records])


def test_rows_write_what_json_writes_for_awkward_values() -> None:
    paths = ["/ünïcode", "/bad-\udcff-name", 'quote"and\\slash', "%s %d", "\x00"]
    values: list[Any] = [True, False, None, 7, -0.0]
    hows = [HiddenHow.REMOVED, HiddenHow.OVERWRITTEN, "plain", HiddenHow.IDENTICAL_REWRITE, "x"]
    table = jsontext.Rows(("p%s", "v", "how"), (paths, values, hows))
    records = [{"p%s": p, "v": v, "how": str(h)} for p, v, h in zip(paths, values, hows,
                                                                     strict=True)]
    assert jsontext.dumps(table) == expected(records)
    ints_and_bools = jsontext.Rows(("n",), ([1, True, 2],))
    assert jsontext.dumps(ints_and_bools) == expected([{"n": 1}, {"n": True}, {"n": 2}])
    assert jsontext.dumps(jsontext.Rows(("n",), ([math.inf],))) == expected([{"n": math.inf}])


def test_rows_hold_scalars_only() -> None:
    with pytest.raises(TypeError):
        jsontext.dumps(jsontext.Rows(("nested",), ([[1]],)))
    with pytest.raises(TypeError):
        jsontext.dumps(jsontext.Rows(("object",), ([object()],)))


def test_records_behave_as_the_list_they_stand_for() -> None:
    files = [WastedFile("/a", 10, 0, 1, HiddenHow.REMOVED),
             WastedFile("/b", 5, 1, 2, HiddenHow.OVERWRITTEN),
             WastedFile("/c", 1, 0, 2, HiddenHow.IDENTICAL_REWRITE)]
    columns = [[getattr(w, name) for w in files]
               for name in ("path", "bytes", "layer_index", "hidden_by_layer", "how")]
    records = Records(WastedFile, columns)
    assert len(records) == 3 and list(records) == files
    assert records[1] == files[1] and records[-1] == files[-1]
    assert records == files and records == tuple(files) and records != files[:2]
    assert list(records[:2]) == files[:2] and isinstance(records[1:], Records)
    assert len(records[5:]) == 0 and list(records[::-1]) == files[::-1]
    assert hash(records) == hash(tuple(files))
    with pytest.raises(IndexError):
        records[3]
    with pytest.raises(ValueError):
        Records(FileRef, [["/a"], [1, 2], [0], [None]])
