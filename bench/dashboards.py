"""Dashboard benchmark (issue 7): each page's named queries, timed in total, without a browser.

Builds (or reuses) the 1,000,000-call / 200,000-task store of bench.queries and runs, per page,
the queries the page runs on its first render with the default sidebar (last 7 days, no slice),
through the dashboards' own data layer (dashboards.data: the filtered views, DuckDB variables and
st.cache_data, here without a Streamlit server). The sidebar's filter_options runs on every page.
"first" is an empty cache, on a new connection, the open one, and the open one after files changed (wall ms,
and the process CPU time of the first two; the best of --runs, as others share the machine);
"cached" each query asked again at once (the dashboards' 30 s query cache answers). Prints a
table; asserts nothing. PAGES is checked against the page sources, so a
page that starts running another query is reported as not benchmarked.

    uv run python -m bench.dashboards                    # 1M calls, 200k tasks
    uv run python -m bench.dashboards --calls 100000
    uv run python -m bench.dashboards --rollups          # over a hard-linked copy with rollups (bench.queries)
    uv run python -m bench.dashboards --rollups --pages overview,cost
"""

from __future__ import annotations

import argparse
import ast
import logging
import resource
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

from bench.queries import ensure_store, with_rollups

REPO = Path(__file__).resolve().parents[1]
# page → the queries of its first render: (name, group, params, window) with window current | previous | none |
# both (from the previous window's start to the current one's end); a param "?" is a trace id, "<since>" the
# current window's start.
PAGES: dict[str, list[tuple[str, str, dict, str]]] = {
    "overview": [
        ("overview_tiles", "all", {"boundary": "<since>", "bucket": "day"}, "both"),
    ],
    "cost": [
        ("cost_per_successful_task", "model", {}, "current"),
        ("cost_per_successful_task", "day", {}, "current"),
        ("failed_task_cost_breakdown", "all", {}, "current"),
        ("most_expensive_tasks", "all", {"limit": 20}, "current"),
        ("unpriced_share", "all", {}, "current"),
    ],
    "latency": [
        ("llm_latency_by_model", "all", {}, "current"),
        ("task_latency", "service", {}, "current"),
        ("llm_errors_by_type", "all", {}, "current"),
        ("llm_time_to_first_token", "all", {}, "current"),
    ],
    "quality": [
        ("quality_by_day", "all", {}, "current"),
        ("refusal_examples", "all", {"limit": 20}, "current"),
        ("validation_failures", "all", {"limit": 20}, "current"),
    ],
    "traces": [
        ("search_llm_calls", "all", {"text": None, "status": None, "sample_seed": None, "limit": 25}, "current"),
        ("trace_spans", "all", {"trace_id": "?"}, "none"),
        ("trace_llm_calls", "all", {"trace_id": "?"}, "none"),
        ("trace_task", "all", {"trace_id": "?"}, "none"),
        ("trace_llm_call_quality", "all", {"trace_id": "?"}, "none"),
    ],
}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=1_000_000, help="LLM calls in the store (default 1,000,000)")
    parser.add_argument("--days", type=int, default=30, help="days the tasks spread over (default 30)")
    parser.add_argument(
        "--runs", type=int, default=3, help="first renders per page; the best is shown (a shared machine; default 3)"
    )
    parser.add_argument("--dir", type=Path, default=Path("/tmp/vigil-bench"), help="where stores are built and kept")
    parser.add_argument("--rollups", action="store_true", help="use a copy of the store with its rollups built")
    parser.add_argument("--pages", default=",".join(PAGES), help="comma-separated pages to time (default: all)")
    args = parser.parse_args(argv)
    _check_pages()
    root = ensure_store(args.dir, args.calls, args.days, 0, False)
    root = with_rollups(root) if args.rollups else root
    logging.getLogger("streamlit").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    print(f"\n## dashboards over {args.calls:,} LLM calls ({root}), window: last 7 days")
    print("first render ms: new connection / connection open / open, files changed (memo rebuilt); CPU: the first two")
    print("| page     | queries | first render ms (new / open / changed) | CPU ms (new / open) | cached re-render ms |")
    print("|----------|---------|----------------------------------------|---------------------|---------------------|")
    for page in args.pages.split(","):
        queries = PAGES[page]
        renders = [[_render(root, queries, start) for start in ("new", "open", "changed")] for _ in range(args.runs)]
        new, open_, changed = (min(r[i][0] for r in renders) for i in range(3))
        cpu_new, cpu_open = (min(r[i][2] for r in renders) for i in (0, 1))
        cached = min(r[0][1] for r in renders)
        firsts = f"{new:>6.0f} / {open_:>6.0f} / {changed:>6.0f}"
        cpus = f"{cpu_new:>6.0f} / {cpu_open:>6.0f}"
        print(f"| {page:<8} | {len(queries) + 1:>7} | {firsts:>38} | {cpus:>19} | {cached:>19.1f} |")
    print(f"\npeak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    return 0


def _render(root: Path, queries: list, start: str) -> tuple[float, float, float]:
    """ms for the page's queries on an empty cache, the same again from the cache, and the CPU ms of the first.
    `start`: "new" connection (a dashboards process that just started), "open" (the process's connection, as
    every later page gets), "changed" (open, but files changed since its last query: the memo is rebuilt)."""
    from dashboards import data, warm
    from dashboards.filters import Filters, previous, window
    from store.catalog import connect
    from store.config import Config
    from store.schema import TABLES

    warm.ENABLED = False  # "changed" is a render before the keeper caught up with new files
    data._query.clear()  # a first render: no cached rows
    data._options.clear()
    if start == "new":
        data._connection.clear()
    store = data.Store(str(root), Config(), tuple(TABLES))
    if start == "changed":  # what a new file in today's partition does to the connection's memo of live rows
        data._connection(store)[0].execute("RESET VARIABLE vigil_memo_key")
    now = datetime.now(UTC)
    since, until = window("7d", now)
    current = Filters(since=since, until=until)
    before = previous(current, now)
    filters = {"current": current, "previous": before, "both": Filters(since=before.since, until=until), "none": None}
    con = connect(root)
    trace_id = con.execute("SELECT trace_id FROM spans_raw ORDER BY start_time DESC LIMIT 1").fetchall()[0][0]
    con.close()
    placeholders = {"?": trace_id, "<since>": since}
    calls = [("filter_options", "all", None, ())] + [
        (name, group, filters[which], tuple(sorted((k, placeholders.get(v, v)) for k, v in params.items())))
        for name, group, params, which in queries
    ]
    first = cached = cpu = 0.0
    for name, group, chosen, params in calls:
        # the sidebar's options come through their own, longer cache
        ask, args = (
            (data._options, (store,))
            if name == "filter_options"
            else (data._query, (store, name, group, chosen, params))
        )
        started, cpu_started = time.perf_counter(), time.process_time()
        ask(*args)
        first += time.perf_counter() - started
        cpu += time.process_time() - cpu_started
        started = time.perf_counter()  # at once: the query cache keeps rows 30 s (the sidebar's options 5 min)
        ask(*args)
        cached += time.perf_counter() - started
    return first * 1000, cached * 1000, cpu * 1000


def _check_pages() -> None:
    """Warn when a page's source runs a named query PAGES does not list for it."""
    for page, queries in PAGES.items():
        tree = ast.parse((REPO / "dashboards" / "app_pages" / f"{page}.py").read_text())
        used = {
            node.args[0].value
            for node in ast.walk(tree)
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "query" and node.args
            and isinstance(node.args[0], ast.Constant)
        }  # fmt: skip
        missing = used - {q[0] for q in queries} - {"budget_overruns"}  # only with [budgets] configured
        if missing:
            print(f"warning: page {page} also runs {', '.join(sorted(missing))}, not benchmarked")


if __name__ == "__main__":
    raise SystemExit(main())
