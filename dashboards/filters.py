"""The dashboards' shared filters: a time range plus service, model, prompt version and environment.

Pure values, no Streamlit: `window(range_key, now)` turns a range into (since, until) and
`previous(filters)` gives the window of equal length just before, for "change vs before" tiles.
The sidebar (dashboards/sidebar.py) builds a `Filters`; data.py applies it to every query.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

# Time range key (as written in the URL) → (label, length; None for all time).
RANGES: dict[str, tuple[str, timedelta | None]] = {
    "24h": ("Last 24 hours", timedelta(hours=24)),
    "7d": ("Last 7 days", timedelta(days=7)),
    "30d": ("Last 30 days", timedelta(days=30)),
    "all": ("All time", None),
}
DEFAULT_RANGE = "7d"


@dataclass(frozen=True)
class Filters:
    """What every page shows: rows starting in [since, until) (None: open end) of the chosen slice."""

    since: datetime | None = None
    until: datetime | None = None
    service: str | None = None
    model: str | None = None
    prompt_version: str | None = None  # "name@version", as store.queries.GROUPS labels it
    environment: str | None = None  # the task's deployment.environment(.name) resource attribute


def window(range_key: str, now: datetime) -> tuple[datetime | None, datetime | None]:
    """The current window ends open (None), so rows arriving with a slightly fast clock still count."""
    length = RANGES.get(range_key, RANGES[DEFAULT_RANGE])[1]
    if length is None:
        return None, None
    # Minute resolution, so cached query results are reused between reruns within a minute.
    return now.replace(second=0, microsecond=0) - length, None


def previous(filters: Filters, now: datetime) -> Filters | None:
    """The window of equal length just before `filters`' (None for all time)."""
    if filters.since is None:
        return None
    end = filters.until or now.replace(second=0, microsecond=0)
    return replace(filters, since=filters.since - (end - filters.since), until=filters.since)
