"""Connecting: the views bind over the empty schema tables and the file scans last (store.catalog.refresh).

What must hold: a store whose files hold the schema's columns in another order, or columns the schema no longer
has, answers every named query exactly as the same rows in the schema's order do; the raw views still show the
files' own columns.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq

from bench.store_gen import build_store
from store.catalog import connect, fetch
from store.queries import load, names, run
from tests.test_query_pruning import _assert_same_rows

END = datetime(2026, 3, 20, tzinfo=UTC)


def _answers(root: Path) -> dict[str, list[dict]]:
    con = connect(root)
    trace_id = con.execute("SELECT trace_id FROM spans_raw ORDER BY start_time DESC, trace_id LIMIT 1").fetchall()
    answers = {}
    for name in names():
        sql = load(name)
        params = {"trace_id": trace_id[0][0]} if "$trace_id" in sql else {}
        if "$since" in sql:
            params["since"] = END - timedelta(days=2)
        rows = run(con, name, **params).to_pylist()
        # signature_drift's top signatures are arg_max over counts: on a tie any of them (the files' read order)
        answers[name] = [{k: v for k, v in row.items() if not k.startswith("top_")} for row in rows]
    for view in ("llm_calls", "tasks", "spans"):
        answers[view] = fetch(con, f"SELECT * FROM {view}").to_pylist()
    return answers


def _rewrite(path: Path, extra: bool) -> None:
    """The same rows with the columns reversed (and one column the schema does not know)."""
    table = pq.read_table(path, partitioning=None)
    table = table.select(list(reversed(table.column_names)))
    if extra:
        table = table.append_column("legacy_note", table.column(0).cast("string"))
    pq.write_table(table, path)


def test_files_in_another_column_order_or_with_unknown_columns_answer_the_same(tmp_path: Path) -> None:
    build_store(tmp_path, 1500, days=4, end=END, fresh_last_day=2)
    expected = _answers(tmp_path)
    assert len(expected["llm_calls"]) > 1000 and len(expected["tasks"]) > 100
    for table in ("llm_calls", "spans"):
        for path in sorted((tmp_path / table).glob("date=*/*.parquet"))[::2]:
            _rewrite(path, extra=False)
    reordered = _answers(tmp_path)
    for name, rows in expected.items():
        _assert_same_rows(reordered[name], rows, name)

    _rewrite(sorted((tmp_path / "llm_calls").glob("date=*/*.parquet"))[0], extra=True)
    con = connect(tmp_path)
    assert "legacy_note" in [row[0] for row in con.execute("DESCRIBE llm_calls_raw").fetchall()]
    with_unknown = _answers(tmp_path)
    for name, rows in expected.items():
        if name != "llm_calls":  # llm_calls' SELECT * shows the unknown column too
            _assert_same_rows(with_unknown[name], rows, name)
    calls = [{k: v for k, v in row.items() if k != "legacy_note"} for row in with_unknown["llm_calls"]]
    _assert_same_rows(calls, expected["llm_calls"], "llm_calls")
