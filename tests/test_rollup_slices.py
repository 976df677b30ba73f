"""store.rollup_slices: every row lands in the one slice whose [from, below) range of trace ids holds it, as DuckDB
compares strings (the views that read the split files do), whatever the id: hex, short, empty or not ASCII; and
splitting a file keeps every row and column."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from store.rollup_slices import _slice_of_rows, slice_bounds, split_file


@settings(max_examples=60, deadline=None)
@given(ids=st.lists(st.text(max_size=40), min_size=1, max_size=50), count=st.integers(1, 300))
def test_a_row_lands_in_the_slice_whose_range_holds_its_trace_id(ids: list[str], count: int) -> None:
    bounds = slice_bounds(count)
    assert len(bounds) == count - 1 and bounds == sorted(bounds)
    con = duckdb.connect()
    expected = [
        con.execute("SELECT count(*) FROM unnest(?::VARCHAR[]) b(v) WHERE ? >= v", [bounds, i]).fetchall()[0][0]
        for i in ids
    ]
    assert _slice_of_rows(pa.array(ids), bounds).tolist() == expected


def test_splitting_a_file_keeps_its_rows_and_schema(tmp_path: Path) -> None:
    source = tmp_path / "store" / "llm_calls" / "date=2026-03-14" / "compacted-abc.parquet"
    source.parent.mkdir(parents=True)
    rows = pa.table({"trace_id": [f"{i * 7919 % 65536:04x}{i:028x}" for i in range(30_000)], "n": range(30_000)})
    pq.write_table(rows, source, row_group_size=4_096)
    parts = split_file(source, slice_bounds(20), tmp_path / "scratch")
    assert sorted(parts) == list(range(20))
    assert all(p.parent == tmp_path / "scratch" / "llm_calls" / "date=2026-03-14" for p in parts.values())
    assert all(p.name.startswith("compacted-abc-s") for p in parts.values()), "the input's kind of file is kept"
    split = pa.concat_tables(pq.read_table(parts[k]) for k in sorted(parts))
    assert split.schema == rows.schema and sorted(split.column("n").to_pylist()) == list(range(30_000))
    for k, path in parts.items():
        ids = pq.read_table(path).column("trace_id").to_pylist()
        assert _slice_of_rows(pa.array(ids), slice_bounds(20)).tolist() == [k] * len(ids)
