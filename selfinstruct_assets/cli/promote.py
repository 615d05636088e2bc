"""`selfinstruct promote --list | --to TARGET`: the served adapter's history, and rollback along it.

    selfinstruct promote --list            # every promoted entry, '*' on the served one
    selfinstruct promote --to previous     # or a method, an adapter_id prefix (6+ characters), an entry_id

With SELFINSTRUCT_ARTIFACTS=s3://BUCKET/PREFIX both read and move the registry on S3 (serving/ under that prefix),
as the serving assets do; otherwise <home>/serving. A store that cannot be used exits 2 with its fix.
"""

import json
import sys
from collections.abc import Callable
from pathlib import Path

from selfinstruct.core import settings
from selfinstruct.core.artifact_store import ArtifactStore, ArtifactStoreError
from selfinstruct.core.artifacts import ADAPTER_METHODS
from selfinstruct.core.duckdb_lock import DuckDBFileError
from selfinstruct.core.s3_uri import is_s3_uri
from selfinstruct.core.tables import format_table
from selfinstruct.serving.gate import metric_value
from selfinstruct.serving.registry import BrokenPointer, current, history, listing, location, rollback
from selfinstruct.serving.table import write_serving_table

LIST_HINT = "(`selfinstruct promote --list` lists what has been promoted)"
COLUMNS = ["", "entry_id", "method", "adapter_id", "cuad_match", "judge_score", "promoted_at", "reason"]


def serving_store(home: Path) -> ArtifactStore | None:
    """The S3 store of SELFINSTRUCT_ARTIFACTS=s3://..., else None: the registry is the folder home/serving."""
    where = settings.get("SELFINSTRUCT_ARTIFACTS")
    if not where or not is_s3_uri(where):
        return None
    from resources.s3 import ArtifactsResource  # dagster-aws's client; a local registry pays no import for it

    return ArtifactsResource(location=where, cache_dir=str(Path(home) / "cache" / "artifacts")).store()


def _print_history(root: Path, store: ArtifactStore | None) -> None:
    entries = history(root, store)
    try:
        now = current(root, store)
    except BrokenPointer as exc:  # the history is what the user needs to pick the entry that repairs it
        print(f"selfinstruct: {exc}", file=sys.stderr)
        now = None
    if not entries:
        raise ValueError(listing(entries, location(root, store)))
    served = (now or {}).get("entry_id")
    rows = [
        (
            "*" if e.get("entry_id") == served else "",
            e.get("entry_id"),
            e.get("method"),
            e.get("adapter_id"),
            metric_value(e, "cuad_match"),
            metric_value(e, "judge_score"),
            e.get("promoted_at"),
            e.get("reason"),
        )
        for e in entries
    ]
    print(format_table(COLUMNS, rows))


def _refresh_table(root: Path, database: str, store: ArtifactStore | None) -> None:
    # current.json moved: bring the SQL view of it along (the files stay the truth if this waits out)
    try:
        refreshed = not Path(database).exists() or write_serving_table(root, database, store=store)
    except DuckDBFileError as exc:  # damaged: waiting would not help, and the user needs to know
        print(
            f"selfinstruct: serving_model not refreshed: {exc} (serving/current.json is already updated)",
            file=sys.stderr,
        )
        return
    if not refreshed:
        print(
            "selfinstruct: the DuckDB file stayed locked; serving_model is refreshed at its next "
            "materialisation (serving/current.json is already updated)",
            file=sys.stderr,
        )


def cmd_promote(args, home: Callable[[], Path], database: Callable[[], str] | None = None) -> int:
    root = Path(home()) / "serving"
    try:
        store = serving_store(home())
        if args.list:
            _print_history(root, store)
            return 0
        print(json.dumps(rollback(root, args.to, store), indent=2, default=str))
    except ArtifactStoreError as exc:  # a missing bucket, an unreachable endpoint: the message names the fix
        print(f"selfinstruct: {exc}", file=sys.stderr)
        return 2
    except settings.SettingsError as exc:  # SELFINSTRUCT_ARTIFACTS: the message is the fix, the history no help
        print(f"selfinstruct: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"selfinstruct: {exc}\n{LIST_HINT}", file=sys.stderr)
        return 1
    except OSError as exc:  # a full disk, a read-only folder: current.json is replaced whole or not at all
        print(
            f"selfinstruct: cannot write {exc.filename or root}: {exc.strerror or exc}; the served adapter is "
            f"unchanged ({root / 'current.json'} still serves the same entry; the history may list the attempt). "
            f"Free space or fix the permissions there (df -h {root}) and run again",
            file=sys.stderr,
        )
        return 2
    if database is not None:
        _refresh_table(root, database(), store)
    return 0


def add_promote_parser(subparsers, home: Callable[[], Path], database: Callable[[], str] | None = None) -> None:
    """Adds `promote` to the CLI; serving lives in home()/serving, and the serving_model table in database()."""
    p = subparsers.add_parser("promote", help="list the served adapter's history, or serve an earlier one")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument(
        "--to",
        metavar="TARGET",
        help="an entry_id, an adapter_id prefix (6+ characters), "
        f"a method ({', '.join(ADAPTER_METHODS)}) or 'previous'",
    )
    group.add_argument("--list", action="store_true", help="print every promoted entry, '*' on the served one")
    p.set_defaults(func=lambda args: cmd_promote(args, home, database))
