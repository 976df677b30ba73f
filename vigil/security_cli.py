"""`vigil keys ...`, `vigil retention apply` and the collector's TLS/auth flags."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime

from vigil.options import add_store_arguments, existing_store, load


def add_commands(commands: argparse._SubParsersAction) -> None:
    for name in ("collector", "up"):
        serving = commands.choices[name]
        serving.add_argument("--tls-cert", metavar="FILE", help="PEM certificate (chain): serve gRPC and HTTP over TLS")
        serving.add_argument("--tls-key", metavar="FILE", help="PEM private key of --tls-cert")
        serving.add_argument(
            "--allow-unauthenticated",
            action="store_true",
            default=None,
            help="listen on a non-loopback address without [auth] enabled (anyone reaching it can write)",
        )

    keys = commands.add_parser(
        "keys",
        help="create, list and revoke project API keys",
        description="Project API keys for the collector ([auth] enabled = true). Only their hashes are stored.",
    )
    actions = keys.add_subparsers(title="actions", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="create a key and print it once", description="Create a key.")
    create.add_argument("--project", required=True, help="project the key's data is stored under")
    create.add_argument("--name", default="", help="a note for `list` (who or what uses the key)")
    create.set_defaults(run=_run_create)
    listing = actions.add_parser("list", help="list keys (never the keys themselves)", description="List keys.")
    listing.add_argument("--format", choices=["table", "json"], default="table")
    listing.set_defaults(run=_run_list)
    revoke = actions.add_parser(
        "revoke", help="revoke a key by id", description="Revoke a key; a running collector notices at once."
    )
    revoke.add_argument("id", help="the key id shown by `vigil keys list`")
    revoke.set_defaults(run=_run_revoke)
    for parser in (create, listing, revoke):
        add_store_arguments(parser)

    retention = commands.add_parser(
        "retention",
        help="delete data past its [retention] limit",
        description="Apply [retention]: delete date partitions older than their limit, per table and project. "
        "On a Delta store ([store] uri) rows are deleted in Delta commits; their files go at the next "
        "`vigil compact` vacuum past compaction_grace_s (`vigil compact --every` also applies retention).",
    )
    retention_actions = retention.add_subparsers(title="actions", metavar="ACTION", required=True)
    apply = retention_actions.add_parser("apply", help="delete what is past its limit", description="Apply retention.")
    apply.add_argument("--dry-run", action="store_true", help="only list what would be deleted")
    add_store_arguments(apply)
    apply.set_defaults(run=_run_retention)


def serving_overrides(args: argparse.Namespace) -> dict[str, dict]:
    """Config overrides from the flags above (None: not given, the config decides)."""
    return {
        "collector": {"tls_cert_file": getattr(args, "tls_cert", None), "tls_key_file": getattr(args, "tls_key", None)},
        "auth": {"allow_unauthenticated": getattr(args, "allow_unauthenticated", None)},
    }


def _run_create(args: argparse.Namespace) -> int:
    from store.keys import create_key, keys_path

    config = load(args)
    entry, key = create_key(keys_path(config), args.project, args.name)
    print(key)
    print(
        f"key {entry.id} for project {entry.project!r}: shown once, only its hash is kept in {keys_path(config)}.\n"
        f"Senders: OTEL_EXPORTER_OTLP_HEADERS='authorization=Bearer {key[:8]}...'"
        + ("" if config.auth.enabled else "\nAuth is off: set [auth] enabled = true (env VIGIL_AUTH_ENABLED=1)."),
        file=sys.stderr,
    )
    return 0


def _run_list(args: argparse.Namespace) -> int:
    from store.keys import keys_path, load_keys

    keys = load_keys(keys_path(load(args)))
    if args.format == "json":
        rows = [{k: v for k, v in vars(key).items() if k != "sha256"} | {"active": key.active} for key in keys]
        json.dump(rows, sys.stdout)
        sys.stdout.write("\n")
        return 0
    if not keys:
        print("no keys; create one with `vigil keys create --project NAME`")
    for key in keys:
        created = _when(key.created_at)
        state = "active" if key.active else f"revoked {_when(key.revoked_at)}"
        print(f"{key.id}  project={key.project}  name={key.name or '-'}  created {created}  {state}")
    return 0


def _run_revoke(args: argparse.Namespace) -> int:
    from store.keys import keys_path, revoke_key

    entry = revoke_key(keys_path(load(args)), args.id)
    print(f"key {entry.id} of project {entry.project!r} revoked {_when(entry.revoked_at)}")
    return 0


def _run_retention(args: argparse.Namespace) -> int:
    config = load(args)
    if config.store.uri:  # Delta tables: deletes, physically gone at the next `vigil compact` vacuum
        from store.delta_retention import apply_delta_retention
        from store.location import table_location

        results = apply_delta_retention(table_location(config.store), config.retention, dry_run=args.dry_run)
    else:
        from store.retention import apply_retention

        results = apply_retention(existing_store(config), config.retention, dry_run=args.dry_run)
    verb = "would delete" if args.dry_run else "deleted"
    for r in results:
        projects = f" (projects {', '.join(p or '<none>' for p in r.projects)})" if r.projects else ""
        print(f"{r.table}/{r.partition}: {verb} {r.files_deleted} files, rewrote {r.files_rewritten}{projects}")
    if not results:
        print("nothing is past its retention limit")
    return 0


def _when(timestamp: float | None) -> str:
    return "-" if timestamp is None else datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M UTC")
