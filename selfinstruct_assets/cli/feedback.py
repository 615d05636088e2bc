"""`selfinstruct feedback add | import`: validate ratings and publish them to the feedback inbox.

selfinstruct feedback add --question Q --answer A --contract-id C --score 4 --scale 1-5
selfinstruct feedback import ratings.jsonl
"""

import argparse
import json
import sys
import uuid
from pathlib import Path

from selfinstruct.core.inbox import inbox_for
from selfinstruct.core.known import read_known, splits
from selfinstruct.core.paths import duckdb_path
from selfinstruct.core.tables import QueryError, query_readonly
from selfinstruct.intake.feedback import (
    FeedbackError,
    parse_feedback_line,
    read_feedback_file,
    read_feedback_inbox,
    write_feedback_file,
)


def known_contracts() -> dict[str, str]:
    """contract_id -> split of CUAD's and added contracts, read-only; QueryError naming `make demo` when missing."""
    missing = QueryError(
        f"no cuad_contracts table in {duckdb_path()} yet; feedback must name a contract_id "
        "from it: run `make demo` first."
    )
    if not Path(duckdb_path()).exists():
        raise missing
    known = splits(read_known(lambda sql: query_readonly(sql)[1]))
    if not known:
        raise missing
    return known


def _inbox_event_ids(contracts: dict[str, str]) -> list[str]:
    # Rows the inbox already holds: writing their event ids again would only produce rejects later.
    return [r["event_id"] for r in read_feedback_inbox(inbox_for("feedback"), contracts)[0]]


def cmd_feedback_add(args: argparse.Namespace) -> int:
    contracts = known_contracts()
    raw = {
        "event_id": args.event_id or uuid.uuid4().hex,
        "question": args.question,
        "answer": args.answer,
        "contract_id": args.contract_id,
        "score": args.score,
        "comment": args.comment,
        "source": args.source,
    }
    if args.scale:
        raw["scale"] = args.scale
    try:
        row = parse_feedback_line(json.dumps(raw), contracts)
        if row["event_id"] in _inbox_event_ids(contracts):
            raise FeedbackError(f"duplicate event_id {row['event_id']!r}: the inbox already holds it")
    except FeedbackError as exc:
        print(f"selfinstruct: feedback rejected: {exc}", file=sys.stderr)
        return 1
    print(write_feedback_file(inbox_for("feedback"), [row]))
    return 0


def cmd_feedback_import(args: argparse.Namespace) -> int:
    path = Path(args.file)
    if not path.is_file():
        print(f"selfinstruct: {path} is not a file", file=sys.stderr)
        return 2
    contracts = known_contracts()
    taken = _inbox_event_ids(contracts)
    try:
        rows, rejects = read_feedback_file(path, contracts, taken)
    except OSError as exc:  # exists, but cannot be read: permissions, a file taken away meanwhile
        print(
            f"selfinstruct: cannot read {path}: {exc.strerror or exc}; check that it is a readable file",
            file=sys.stderr,
        )
        return 2
    written = write_feedback_file(inbox_for("feedback"), rows) if rows else None
    print(f"{path}: {len(rows)} valid row(s), {len(rejects)} rejected")
    for r in rejects:
        print(f"  line {r['line']}: {r['reason']}")
    print(f"wrote {written}" if written else "nothing written")
    return 0 if rows else 1


def add_feedback_parser(sub) -> None:
    fb = sub.add_parser(
        "feedback",
        help="add scored answers to the feedback inbox "
        "($SELFINSTRUCT_INBOX/feedback, default $SELFINSTRUCT_HOME/inbox/feedback)",
    )
    fsub = fb.add_subparsers(dest="feedback_command", required=True)
    add = fsub.add_parser("add", help="validate one rating and write it to the inbox")
    add.add_argument("--question", required=True)
    add.add_argument("--answer", required=True)
    add.add_argument("--contract-id", required=True, help="a contract_id from cuad_contracts")
    add.add_argument("--score", required=True, type=float, help="0-1, or 1-5 (see --scale)")
    add.add_argument(
        "--scale",
        choices=("0-1", "1-5"),
        default=None,
        help="the score's scale; without it 0-1 is read as 0-1 and (1, 5] as 1-5",
    )
    add.add_argument("--comment", default="")
    add.add_argument("--source", choices=("human", "ai"), default="human")
    add.add_argument("--event-id", default=None, help="unique id of this rating (default: a new uuid4 hex)")
    add.set_defaults(func=cmd_feedback_add)
    imp = fsub.add_parser("import", help="validate every line of a JSON Lines file; write the valid rows to the inbox")
    imp.add_argument("file")
    imp.set_defaults(func=cmd_feedback_import)
