"""What the `vigil` subcommands share: the store flags, loading the Config, and output helpers."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from store.config import Config, ConfigError, load_config, parse_age

DATA_DIR_HELP = "folder of the Parquet store and write-ahead log (env VIGIL_STORE_DATA_DIR; default ./vigil-data)"


def add_store_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", metavar="DIR", help=DATA_DIR_HELP)
    parser.add_argument("--config", metavar="FILE", help="TOML config file (sections [collector], [store])")


def load(args: argparse.Namespace, collector: dict[str, Any] | None = None, **sections: dict[str, Any]):
    return load_config(
        args.config,
        overrides={"store": {"data_dir": args.data_dir}, "collector": collector or {}, **sections},
    )


def existing_store(config: Config) -> Path:
    root = Path(config.store.data_dir)
    if not root.is_dir() and not config.store.uri:  # with a uri the tables are elsewhere; data_dir is local state
        raise ConfigError(f"no store at {root}; start `vigil up --data-dir {root}` first or fix --data-dir")
    return root


def parse_when(value: str | None, now: datetime, flag: str) -> datetime | None:
    """'7d', '12h', '30m', '2w' before now, or an ISO date/time (UTC unless it says otherwise)."""
    if not value:
        return None
    age = parse_age(value)
    if age is not None:
        return now - age
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{flag} {value!r}: use an age like 7d, 12h, 30m, 2w or a date like 2026-11-01") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def progress(template: str):
    """A progress callback writing to stderr: one updating line on a terminal, a few lines otherwise."""
    tty = sys.stderr.isatty()

    def show(done: int, total: int) -> None:
        if tty:
            print("\r" + template.format(done=done, total=total), end="\n" if done == total else "", file=sys.stderr)
        elif done == total or done % max(1, total // 10) == 0:
            print(template.format(done=done, total=total), file=sys.stderr)

    return show


def json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.hex()
    return str(value)
