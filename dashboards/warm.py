"""Keeps a dashboards connection warm between page runs: its memo of the live dates (store.rollups) follows the
files in the background, so the first page after new files arrived finds it current.

A collector writes a new file into today's partition every flush, which makes the memo stale: without this, the
first query after that (every page once its 30 s query cache expires) rebuilds it, about a second at 1M calls.
`Keeper` looks every KEEP_EVERY_S, while a page ran a query in the last KEEP_FOR_S, and takes the listing (as
every query does, store.catalog.pin_files), which rebuilds the memo when the files changed. It only runs while the
connection is free (a query holding it keeps the memo current itself), and it only ever does what the next
query would have done: an answer never depends on it.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref

import duckdb

from store.catalog import pin_files

logger = logging.getLogger(__name__)

KEEP_EVERY_S = 10.0
KEEP_FOR_S = 600.0  # after the last query: nobody is looking, the memo may go stale (the next query rebuilds it)
ENABLED = True  # bench.dashboards times renders without it
_STOP = threading.Event()  # set at exit: a daemon thread still inside DuckDB as the interpreter ends aborts it
_THREADS: weakref.WeakSet[threading.Thread] = weakref.WeakSet()


class Keeper:
    def __init__(self, con: duckdb.DuckDBPyConnection, lock: threading.Lock, active: bool = True) -> None:
        self._con, self._lock, self._active = con, lock, active
        self._used = time.monotonic()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def touch(self) -> None:
        """A page ran a query: keep the memo current for KEEP_FOR_S from now."""
        self._used = time.monotonic()
        if ENABLED and self._active and (self._thread is None or not self._thread.is_alive()):
            with self._start_lock:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._run, name="vigil-memo-keeper", daemon=True)
                    _THREADS.add(self._thread)
                    self._thread.start()

    def _run(self) -> None:
        # The thread ends when nobody looked for KEEP_FOR_S (the next query starts it again), so a connection
        # the dashboards dropped is not kept alive by it for longer than that.
        while time.monotonic() - self._used < KEEP_FOR_S:
            if _STOP.wait(KEEP_EVERY_S):
                return
            if not ENABLED or not self._lock.acquire(blocking=False):
                continue  # a query holds the connection: it keeps the memo current itself
            try:
                pin_files(self._con)
            except duckdb.ConnectionException:
                return  # closed
            except Exception:  # the next query meets the same problem and shows it; keep trying
                logger.exception("keeping the dashboards' memo current failed")
            finally:
                self._lock.release()


@atexit.register
def _stop() -> None:
    _STOP.set()
    for thread in list(_THREADS):
        thread.join(timeout=5)  # at most one memo rebuild
