"""LLM calls picked by hand for replay (the Traces page's "send to replay" button) → named pick lists.

A pick list is a JSON Lines file `<root>/replay_picks/<name>.jsonl`, one line per pick:
`{"trace_id", "span_id", "picked_at" (UTC ISO 8601), "source"}`. Appending a line is one `write` on
a file opened with O_APPEND and fsynced, so concurrent pickers never interleave a line and a pick
is durable once `add_pick` returns. The replay sampler turns a pick list into a replay set (a
snapshot of the calls' inputs); picking the same call twice keeps one (`read_picks` dedupes).
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path

from store.outcomes import VerdictError, check_trace_id
from store.writer import fsync_dir

DEFAULT_PICK_LIST = "review"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_SPAN_ID = re.compile(r"^[0-9a-f]{16}$")


class PickError(ValueError):
    """A pick that cannot be stored; the message says what to fix."""


def picks_dir(root: Path) -> Path:
    return Path(root) / "replay_picks"


def add_pick(root: Path, name: str, trace_id: str, span_id: str, source: str = "dashboards") -> dict[str, str]:
    if not _NAME.match(name):
        raise PickError(f"pick list name {name!r}: use letters, digits, '-', '_' or '.' (at most 64)")
    try:
        trace_id = check_trace_id(trace_id)
    except VerdictError as exc:
        raise PickError(str(exc)) from None
    span_id = str(span_id).strip().lower()
    if not _SPAN_ID.match(span_id):
        raise PickError(f"span_id {span_id!r} must be 16 hex characters (the OTel span id)")
    pick = {"trace_id": trace_id, "span_id": span_id, "picked_at": datetime.now(UTC).isoformat(), "source": source}
    folder = picks_dir(root)
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / f"{name}.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(pick) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_dir(folder)
    return pick


def read_picks(root: Path, name: str) -> list[dict[str, str]]:
    """The picks of one list, first pick of each call kept, in the order they were made."""
    path = picks_dir(root) / f"{name}.jsonl"
    if not path.exists():
        return []
    seen, picks = set(), []
    for line in path.read_text().splitlines():
        try:
            pick = json.loads(line)
        except ValueError:
            continue  # a line cut by a crash mid-write; the complete ones stand
        key = (pick.get("trace_id"), pick.get("span_id"))
        if key not in seen:
            seen.add(key)
            picks.append(pick)
    return picks


def list_pick_lists(root: Path) -> list[str]:
    return sorted(path.stem for path in picks_dir(root).glob("*.jsonl"))
