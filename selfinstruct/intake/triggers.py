"""When the sensors request a run: Dagster-free decisions over inbox listings and a JSON cursor.

    decision = feedback_decision(inbox.files(), inbox.read, contracts, cursor, now=time.time(), min_rows=20)
    if decision.request: ...  # one run for decision.new_rows rows; store decision.cursor either way

A file counts once it is complete: writers publish by rename, and a file whose last byte is not a newline
is only taken once it has not changed between two ticks or was last modified `SETTLE_S` seconds before
the tick (a contract's text rarely ends in a newline). Rows are counted by event id, so a file dropped
twice, or a row repeated in another file, never triggers a second run; consumed ids are kept in the
cursor as short hashes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from selfinstruct.core.inbox_types import InboxEntryError
from selfinstruct.intake.feedback import read_feedback_bytes
from selfinstruct.intake.jsonl import SETTLE_S


@dataclass
class Decision:
    request: bool
    reason: str
    cursor: str
    run_key: str = ""
    new_rows: int = 0
    items: list = field(default_factory=list)  # what the run is for: file names or contract ids
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (name, reason) of entries that could not be read


def _short(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:12]


def _stat(f) -> list:
    return [int(f.size), float(f.modified)]


def _unread(skipped: list[tuple[str, str]]) -> str:
    return f"; {len(skipped)} file(s) not readable, skipped: {', '.join(n for n, _ in skipped)}" if skipped else ""


def _load(cursor: str | None) -> dict:
    return json.loads(cursor) if cursor else {}


def changed_files(
    files: Sequence,
    read: Callable[[str], bytes],
    taken: Mapping[str, list],
    last_seen: Mapping[str, list],
    now: float | None = None,
    skipped: list[tuple[str, str]] | None = None,
) -> tuple[dict[str, bytes], dict[str, list]]:
    """(complete new-or-changed files' bytes, stats of every new-or-changed file) against `taken`.

    An entry that cannot be read (InboxEntryError) is left out and, when `skipped` is given, appended to it as
    (name, reason); it is looked at again next tick, so it is reported until someone fixes it."""
    fresh, stats = {}, {}
    for f in files:
        if taken.get(f.name) == _stat(f):
            continue
        stats[f.name] = _stat(f)
        try:
            data = read(f.name)
        except FileNotFoundError:  # moved away between listing and reading
            continue
        except InboxEntryError as exc:
            if skipped is not None:
                skipped.append((f.name, str(exc)))
            continue
        settled = now is not None and now - float(f.modified) >= SETTLE_S
        if data.endswith(b"\n") or settled or last_seen.get(f.name) == _stat(f):
            fresh[f.name] = data
    return fresh, stats


def feedback_decision(
    files: Sequence,
    read: Callable[[str], bytes],
    contracts: Mapping[str, str],
    cursor: str | None,
    now: float,
    min_rows: int = 20,
    max_wait_s: float = 3600.0,
) -> Decision:
    """Request a refresh when >= `min_rows` new valid rows wait, or the oldest of them waited `max_wait_s`."""
    state = _load(cursor)
    taken, consumed = state.get("files", {}), set(state.get("ids", []))
    skipped: list[tuple[str, str]] = []
    fresh, stats = changed_files(files, read, taken, state.get("seen", {}), now, skipped)
    modified = {f.name: float(f.modified) for f in files}
    new_ids: dict[str, float] = {}  # short id -> when its file arrived
    for name, data in fresh.items():
        rows, _ = read_feedback_bytes(name, data, contracts)
        for r in rows:
            key = _short(r["event_id"])
            if key not in consumed:
                new_ids.setdefault(key, modified[name])
    waited = now - min(new_ids.values()) if new_ids else 0.0
    if new_ids and (len(new_ids) >= min_rows or waited >= max_wait_s):
        files_taken = sorted(fresh)
        reason = (
            f"{len(new_ids)} new valid feedback rows"
            + (
                f" >= {min_rows}"
                if len(new_ids) >= min_rows
                else f", the oldest waiting {waited:.0f} s >= {max_wait_s:.0f} s"
            )
            + f" in {', '.join(files_taken)}"
        )
        cursor_out = {
            "files": {**taken, **{n: stats[n] for n in files_taken}},
            "ids": sorted(consumed | set(new_ids)),
            "seen": {},
        }
        return Decision(
            True,
            reason + _unread(skipped),
            json.dumps(cursor_out),
            run_key="feedback:" + _short(" ".join(sorted(new_ids))),
            new_rows=len(new_ids),
            items=files_taken,
            skipped=skipped,
        )
    reason = (
        f"{len(new_ids)} new valid feedback rows < {min_rows}, the oldest waiting {waited:.0f} s < {max_wait_s:.0f} s"
        if new_ids
        else "no new valid feedback rows"
    )
    return Decision(
        False, reason + _unread(skipped), json.dumps({**state, "seen": stats}), new_rows=len(new_ids), skipped=skipped
    )


def new_files_decision(
    files: Sequence, read: Callable[[str], bytes], cursor: str | None, what: str, now: float | None = None
) -> Decision:
    """Request a run when complete files are new or changed since the last request (the query log's trigger)."""
    state = _load(cursor)
    taken = state.get("files", {})
    skipped: list[tuple[str, str]] = []
    fresh, stats = changed_files(files, read, taken, state.get("seen", {}), now, skipped)
    if not fresh:
        return Decision(
            False,
            f"no new complete {what} files" + _unread(skipped),
            json.dumps({**state, "seen": stats}),
            skipped=skipped,
        )
    names = sorted(fresh)
    key = _short(json.dumps({n: stats[n] for n in names}, sort_keys=True))
    return Decision(
        True,
        f"{len(names)} new {what} file(s): {', '.join(names)}" + _unread(skipped),
        json.dumps({"files": {**taken, **{n: stats[n] for n in names}}, "seen": {}}),
        run_key=f"{what}:{key}",
        items=names,
        skipped=skipped,
    )


def contracts_decision(
    inbox,
    cursor: str | None,
    known: Mapping[str, tuple[str, str]],
    cuad_ids: set[str],
    eval_fraction: float = 0.2,
    now: float | None = None,
) -> tuple[Decision, list[dict]]:
    """(decision, rejects) for the contracts inbox: `items` are (contract_id, sha256) of contracts to (re)index.

    `known` maps contract_id -> (split, sha256) of every contract loaded so far, `cuad_ids` those of the
    CUAD load. A new id becomes a new partition; an added contract whose text changed is indexed again;
    exact duplicates and changed texts of CUAD's own contracts are rejected, never re-added.
    """
    from selfinstruct.intake.contract_inbox import read_contract_files, unsupported_files

    state = _load(cursor)
    skipped: list[tuple[str, str]] = unsupported_files(inbox)  # reported at every tick while they lie there
    fresh, stats = changed_files(inbox.files(), inbox.read, state.get("files", {}), state.get("seen", {}), now, skipped)
    if not fresh:
        return Decision(
            False,
            "no new complete contract files" + _unread(skipped),
            json.dumps({**state, "seen": stats}),
            skipped=skipped,
        ), []
    others = {sha: cid for cid, (_, sha) in known.items()}
    contracts, rejects = read_contract_files(inbox, sorted(fresh), known_sha256=others, eval_fraction=eval_fraction)
    items = []
    for c in contracts:
        if c["contract_id"] in cuad_ids:
            rejects.append(
                {
                    "source": c["inbox_file"],
                    "row": None,
                    "action": "skipped",
                    "reason": f"contract_id {c['contract_id']} belongs to a CUAD contract; rename the file to add it",
                }
            )
        elif known.get(c["contract_id"], (None, None))[1] != c["sha256"]:
            items.append((c["contract_id"], c["sha256"]))
    cursor_out = json.dumps({"files": {**state.get("files", {}), **{n: stats[n] for n in fresh}}, "seen": {}})
    reason = (
        f"{len(items)} contract(s) to index from {', '.join(sorted(fresh))}, {len(rejects)} rejected"
        if items
        else f"nothing new to index in {', '.join(sorted(fresh))} ({len(rejects)} rejected)"
    )
    return Decision(bool(items), reason + _unread(skipped), cursor_out, items=items, skipped=skipped), rejects


def drift_decision(
    state: dict, report_id: int | None, drifted: bool, reasons: str, now: float, cooldown_s: float
) -> Decision:
    """Request regeneration for a drift_report materialisation (`report_id`) not acted on before that found
    drift, unless regeneration was requested less than `cooldown_s` ago (a drift that regeneration cannot
    remove, such as queries about a new topic, would otherwise loop)."""
    if report_id is None or report_id <= state.get("report", -1):
        return Decision(False, "no new drift_report", json.dumps(state))
    state = {**state, "report": report_id}
    if not drifted:
        return Decision(
            False,
            f"drift_report {report_id}: no drift ({reasons or 'every statistic within bounds'})",
            json.dumps(state),
        )
    since = now - state.get("regenerated_at", float("-inf"))
    if since < cooldown_s:
        return Decision(
            False,
            f"drift_report {report_id} found drift ({reasons}) but regeneration was requested "
            f"{since:.0f} s ago < cooldown {cooldown_s:.0f} s",
            json.dumps(state),
        )
    state["regenerated_at"] = now
    return Decision(True, f"drift_report {report_id}: {reasons}", json.dumps(state), run_key=f"drift:{report_id}")
