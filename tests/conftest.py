"""Shared fixtures: a real collector on an ephemeral loopback port over a real Parquet store."""

from __future__ import annotations

import shutil
import sysconfig
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from collector.server import Collector
from store.catalog import connect, fetch
from store.config import Config, load_config

SHARED = Path(__file__).resolve().parents[2] / "shared"
RECORDINGS = SHARED / "otlp-recordings"


def can_compile() -> bool:
    """A C compiler and Python's headers: what the install needs to build the compiled modules (setup.py)."""
    return shutil.which("cc") is not None and (Path(sysconfig.get_paths()["include"]) / "Python.h").exists()


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(tmp_path / "data")


def collector_settings(**collector: Any) -> dict[str, Any]:
    """[collector] for a test: ephemeral loopback ports, fast flushes, no metrics log line."""
    return {
        "http_listen": "127.0.0.1:0",
        "grpc_listen": "127.0.0.1:0",
        "flush_interval_s": 0.2,
        "metrics_log_interval_s": 0,
        "decode_workers": 1,  # the worker-process path, at the smallest start-up cost
    } | collector


def make_config(data_dir: Path, **collector: Any) -> Config:
    settings = collector_settings(**collector)
    return load_config(env={}, overrides={"store": {"data_dir": str(data_dir)}, "collector": settings})


@pytest.fixture
def collector(config: Config) -> Iterator[Collector]:
    with Collector(config) as running:
        yield running


@pytest.fixture
def channel(collector: Collector) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{collector.grpc_port}") as chan:
        yield chan


@pytest.fixture
def http_url(collector: Collector) -> str:
    return f"http://127.0.0.1:{collector.http_port}"


def query(data_dir: Path | str, sql: str, params: list | None = None) -> list[dict[str, Any]]:
    con = connect(Path(data_dir))
    try:
        return fetch(con, sql, params or []).to_pylist()
    finally:
        con.close()


def wait_for(fetch: Callable[[], Any], ready: Callable[[Any], bool], timeout_s: float = 10.0) -> Any:
    """Poll until `ready(fetch())`; return the last value (the caller asserts on it)."""
    deadline = time.monotonic() + timeout_s
    value = fetch()
    while not ready(value) and time.monotonic() < deadline:
        time.sleep(0.05)
        value = fetch()
    return value
