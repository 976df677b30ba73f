"""The collector's instance id: who wrote a Delta commit, and under which WAL sequence numbers.

Comes in: the WAL directory. Goes out: an id kept in `<wal dir>/instance-id`, made once (a random
uuid) and fsynced. Delta app transactions are keyed by it (store.delta): a sequence number means
something only within one WAL, so a WAL directory that is wiped and starts again at 1 must get a new
id, or its fresh records would look already stored. Must not: be shared by two collectors, which is
why it is not a config key: two collectors never share a WAL directory either.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from store.writer import fsync_dir

_FILE = "instance-id"


def instance_id(wal_dir: Path) -> str:
    path = wal_dir / _FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    wal_dir.mkdir(parents=True, exist_ok=True)
    made = f"vigil-collector-{uuid.uuid4()}"
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as handle:
        handle.write(made)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    fsync_dir(wal_dir)
    return made
