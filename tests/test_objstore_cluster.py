"""Three real collector processes writing one S3 bucket at once, behind the router, one killed -9 and restarted.

Three `vigil collector` processes (each its own WAL, all with `[store] uri` = the same bucket on a real
S3-compatible server on loopback) sit behind `vigil router`'s trace-id routing. Client threads export
traces through the router without pause, and now and then send an acknowledged request again (a lost
answer). Meanwhile one collector after the other is killed with SIGKILL and restarted on its port;
requests that touch it meanwhile get UNAVAILABLE from the router and are retried by their client.
After a clean SIGTERM of all three, the store, read through the catalog, must hold every span any
client saw acknowledged exactly once, and nothing no client sent: concurrent Delta commits from three
writers lost nothing, and WAL replays after the kills added nothing the views would show twice.
"""

from __future__ import annotations

import random
import re
import socket
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from collector.router import serve_router
from store.catalog import connect, fetch
from tests.conftest import wait_for
from tests.test_crash_recovery import Client, CollectorProcess, Target, _assert_each_once

if TYPE_CHECKING:
    from tests.s3_server import S3

pytest_plugins = ["tests.s3_server"]


def _free_ports(count: int) -> list[int]:
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def _counts(config, view: str) -> dict[tuple[str, str], int]:
    con = connect(config.store.data_dir, config)
    rows = fetch(con, f"SELECT trace_id, span_id, count(*) AS n FROM {view} GROUP BY ALL").to_pylist()
    return {(row["trace_id"], row["span_id"]): row["n"] for row in rows}


def test_three_collectors_on_one_bucket_killed_and_restarted_store_every_ack_once(tmp_path: Path, s3: S3) -> None:
    rng = random.Random(20261201)
    ports = _free_ports(3)
    collectors = []
    for number in range(len(ports)):
        (tmp_path / f"logs-{number}").mkdir()
        process = CollectorProcess(
            tmp_path / f"collector-{number}", tmp_path / f"logs-{number}",
            flush_interval_s="0.3", metrics_log_interval_s="0", decode_workers="0",
        )  # fmt: skip
        process.env.update(s3.env())
        collectors.append(process)
    for process, port in zip(collectors, ports, strict=True):
        process.start(grpc_listen=f"127.0.0.1:{port}")
    server, router, router_port = serve_router("127.0.0.1:0", [f"127.0.0.1:{p}" for p in ports])
    target, stop = Target(), threading.Event()
    target.port = router_port
    clients = [Client(n, target, rng.randrange(2**32), stop) for n in range(3)]
    for client in clients:
        client.start()
    kills = 3
    try:
        for kill in range(kills):
            acked_before = sum(c.ack_count() for c in clients)
            wait_for(lambda: sum(c.ack_count() for c in clients), lambda n, a=acked_before: n >= a + 15, 30)
            time.sleep(rng.uniform(0.05, 0.6))
            victim = collectors[kill % 3]
            victim.kill()
            time.sleep(0.3)  # requests routed to it now fail and wait in their clients
            victim.start(grpc_listen=f"127.0.0.1:{ports[kill % 3]}")
        wait_for(lambda: sum(len(c.pending) for c in clients), lambda n: n == 0, 60)
    finally:
        stop.set()
        for client in clients:
            client.join(timeout=30)
        server.stop(5).wait()
        router.close()
        codes = [p.terminate() if p.process and p.process.poll() is None else None for p in collectors]
    assert codes == [0, 0, 0], [p.stderr() for p in collectors]
    assert [e for c in clients for e in c.errors] == []
    assert sum(len(c.pending) for c in clients) == 0, "every request was acknowledged in the end"

    config = s3.config(tmp_path / "reader")
    acked = set().union(*(c.acked for c in clients))
    spans = _counts(config, "spans")
    _assert_each_once(spans, acked, "spans")
    assert spans.keys() <= set().union(*(c.sent for c in clients)), "the store holds spans no client sent"
    calls = _counts(config, "llm_calls")
    _assert_each_once(calls, set().union(*(c.acked_llm for c in clients)), "llm_calls")

    raw = fetch(connect(config.store.data_dir, config), "SELECT count(*) AS n FROM spans_raw").to_pylist()[0]["n"]
    recovered = sum(int(n) for p in collectors for n in re.findall(r"recovered requests=(\d+)", p.all_stderr()))
    print(
        f"collectors=3 kills={kills} acked_spans={len(acked)} stored_spans={len(spans)} raw_rows={raw} "
        f"resent_acked_requests={sum(c.duplicates for c in clients)} failed_exports={sum(c.failures for c in clients)} "
        f"wal_recovered_requests={recovered} bucket_objects={len(s3.object_keys())}"
    )
