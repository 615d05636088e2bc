"""The adapter users are served: a gated pointer to an immutable snapshot, with a history to roll back along.

Training overwrites `<home>/adapters/<method>`, so a promoted adapter is copied to `serving/adapters/<adapter_id>`
first. Each promotion is appended to `serving/history.jsonl` before `serving/current.json` is replaced, so a run
killed at any moment leaves the old pointer or the new one, each naming a complete snapshot.

    best = pick_candidate(rows)                      # benchmark_scores rows of one run; root = home / "serving"
    if best and (verdict := gate(best, current(root)))["passed"]:
        snap = snapshot_adapter(home / "adapters" / best["method"], root, best["adapter_id"])
        promote(root, {**best, "path": str(snap), "scores": {"cuad_match": best["cuad_match"]},
                       "benchmark_run_id": best["run_id"]}, verdict["reason"])
    selfinstruct promote --list | --to previous      # the history ('*' = served) | serve the one before
"""

import json
import math
import os
import shutil
import sys
import tempfile
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Sequence

ADAPTER_METHODS = ("sft", "dpo", "orpo", "grpo")
REQUIRED_FILES = ("adapter_config.json", "adapter_model.safetensors")
ENTRY_KEYS = ("method", "adapter_id", "path", "scores", "benchmark_run_id")
LIST_HINT = "(`selfinstruct promote --list` lists what has been promoted)"


def _metric(row: dict, metric: str) -> float | None:
    """`row[metric]` for a benchmark row, `row["scores"][metric]` for a promoted entry."""
    value = row[metric] if metric in row else (row.get("scores") or {}).get(metric)
    # An average over zero judged answers comes back as NaN: no more comparable than a missing score.
    return None if value is None or isinstance(value, bool) or math.isnan(float(value)) else float(value)


def pick_candidate(rows: Sequence[dict], metric: str = "cuad_match") -> dict | None:
    """The adapter row best on `metric` (ties: higher judge_score, then method name); None if none is scored."""
    runs = sorted({str(r["run_id"]) for r in rows if r.get("run_id")})
    if len(runs) > 1:
        raise ValueError(f"pick_candidate got rows of {len(runs)} benchmark runs ({', '.join(runs)}); pass the "
                         "rows of one run_id (the latest: order by created_at desc)")
    if rows and not any(metric in r for r in rows):
        raise ValueError(f"no benchmark row has a {metric!r} column; use one of {sorted(rows[0])}")
    scored = [r for r in rows if r.get("method") in ADAPTER_METHODS and _metric(r, metric) is not None]
    judge = lambda r: -math.inf if _metric(r, "judge_score") is None else _metric(r, "judge_score")  # noqa: E731
    return dict(min(scored, key=lambda r: (-_metric(r, metric), -judge(r), r["method"]))) if scored else None


def gate(candidate: dict, current: dict | None, tolerance: float = 0.02, metric: str = "cuad_match") -> dict:
    """Whether `candidate` may replace `current` (a benchmark row or a promoted entry): not worse on `metric`
    by more than `tolerance` (absolute)."""
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not 0 <= tolerance <= 1:
        raise ValueError(f"tolerance must be a number in [0, 1] (the largest drop in {metric} let through), "
                         f"got {tolerance!r}")
    cand, cur = _metric(candidate, metric), (_metric(current, metric) if current is not None else None)
    delta = cand - cur if cand is not None and cur is not None else None
    name = candidate.get("method", "the candidate")
    if cand is None:
        passed, reason = False, f"{name} has no {metric} score, so it cannot be compared and is not promoted"
    elif cur is None:
        served = "nothing is served yet" if current is None else f"the served model has no {metric} score"
        passed, reason = True, f"{served}; {name} starts with {metric} {cand:.3f}"
    else:
        # The epsilon keeps a drop of exactly `tolerance` inside it despite float rounding (0.52 - 0.02).
        passed = cand >= cur - tolerance - 1e-12
        reason = (f"{name} {metric} {cand:.3f} vs served {cur:.3f} (delta {delta:+.3f}) is "
                  f"{'within' if passed else 'beyond'} the tolerance {tolerance}")
    return {"passed": passed, "metric": metric, "candidate": cand, "current": cur, "delta": delta,
            "tolerance": tolerance, "reason": reason}


def _missing(folder: Path) -> list[str]:
    return [name for name in REQUIRED_FILES if not (folder / name).is_file()]


def snapshot_adapter(adapter_dir: Path, serving_root: Path, adapter_id: str) -> Path:
    """An immutable copy of `adapter_dir` at serving_root/adapters/<adapter_id>, built aside, published by rename."""
    if not isinstance(adapter_id, str) or not adapter_id or adapter_id[0] == "." or {"/", "\\"} & set(adapter_id):
        raise ValueError(f"adapter_id must be a plain folder name (benchmark_scores' adapter_id), got {adapter_id!r}")
    adapter_dir, final = Path(adapter_dir), Path(serving_root) / "adapters" / adapter_id
    if not _missing(final):
        return final  # content-addressed: the same id names the same weights, so there is nothing to redo
    if missing := _missing(adapter_dir):
        raise FileNotFoundError(f"{adapter_dir / missing[0]} is missing, so {adapter_dir} is not a complete adapter; "
                                "train it again (python -m training <method> ...) or pick another candidate")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{adapter_id}-", dir=final.parent))
    try:
        for name in REQUIRED_FILES + ("training_metrics.json",):
            if (adapter_dir / name).is_file():
                shutil.copy2(adapter_dir / name, tmp / name)
                with open(tmp / name, "rb") as f:
                    os.fsync(f.fileno())
        os.chmod(tmp, 0o755)  # mkdtemp makes it owner-only
        if final.exists() and _missing(final):  # a leftover edited by hand: nothing valid can point at it
            shutil.rmtree(final)
        try:
            os.rename(tmp, final)
        except OSError:
            if _missing(final):  # else a concurrent run published the same id first, which is as good
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def current(serving_root: Path) -> dict | None:
    """The entry being served (serving_root/current.json), or None before the first promotion."""
    path = Path(serving_root) / "current.json"
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not JSON ({exc}); delete it, then run `selfinstruct promote --to "
                         "<entry_id>`") from exc


def history(serving_root: Path) -> list[dict]:
    """Every entry ever promoted, oldest first."""
    path = Path(serving_root) / "history.jsonl"
    lines = path.read_text().split("\n") if path.is_file() else []
    entries = []
    for number, line in ((n, text) for n, text in enumerate(lines, 1) if text.strip()):
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError as exc:
            if number == len(lines):  # no newline after it: an append killed mid-write, never made current
                break
            raise ValueError(f"{path} line {number} is not JSON ({exc}); repair or delete that line") from exc
    return entries


def _append_line(path: Path, line: str) -> None:
    with open(path, "a+b") as f:
        f.seek(0)
        # A torn line left by a killed append would swallow this one: cut it off (a no-op after a full line).
        f.truncate(f.read().rfind(b"\n") + 1)
        f.write(line.encode())
        f.flush()
        os.fsync(f.fileno())


def _write_json(path: Path, record: dict) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(record, f, indent=2, default=str)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it owner-only
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def adapter_dir(serving_root: Path, entry: dict) -> Path:
    """The folder an entry serves: its `path`, taken relative to the serving root unless absolute."""
    path = Path(entry["path"])
    return (path if path.is_absolute() else Path(serving_root) / path).resolve()


def promote(serving_root: Path, entry: dict, reason: str) -> dict:
    """Serve `entry` (a snapshot and its scores): append it to the history, then point current.json at it."""
    missing = [key for key in ENTRY_KEYS if key not in entry]
    if missing or not isinstance(entry["scores"], dict):
        raise ValueError(f"promote: the entry lacks {', '.join(missing) or 'a dict of scores'}; it needs "
                         f"{', '.join(ENTRY_KEYS)}, scores being a dict such as {{'cuad_match': 0.4}}")
    root = Path(serving_root)
    folder = adapter_dir(root, entry)
    if not (folder / "adapter_model.safetensors").is_file():
        raise ValueError(f"promote: {folder} has no adapter_model.safetensors; promote the folder "
                         "snapshot_adapter() returned, never a training output that the next run overwrites")
    if not isinstance(reason, str) or not reason.strip():
        raise ValueError("promote: give a reason (a sentence such as gate()'s), so the history explains itself")
    root.mkdir(parents=True, exist_ok=True)
    # Snapshots under the serving root are recorded relative to it, so a moved or copied home still serves.
    base = root.resolve()
    stored = folder.relative_to(base) if folder.is_relative_to(base) else folder  # adapter_dir() resolved it
    stamp = {"entry_id": uuid.uuid4().hex[:10], "promoted_at": datetime.now(timezone.utc).isoformat(), "reason": reason}
    record = {**{k: v for k, v in entry.items() if k not in stamp}, "path": str(stored), **stamp}
    # History first: a kill in between leaves an entry that was never served, not a pointer without a record.
    _append_line(root / "history.jsonl", json.dumps(record, default=str) + "\n")
    _write_json(root / "current.json", record)
    return record


def _listing(entries: list[dict], root: Path) -> str:
    lines = [f"  {e.get('entry_id')}  {e.get('method')}  {e.get('adapter_id')}  {e.get('promoted_at')}"
             for e in entries]
    return "\n".join(lines) or f"  nothing yet in {root}: serving_model promotes the first adapter that passes its gate"


def rollback(serving_root: Path, to: str) -> dict:
    """Serve an earlier history entry again: `to` is an entry_id, an adapter_id prefix (6+ characters), a method
    (its latest other adapter) or "previous". Entries holding the served adapter are skipped for the last two,
    since re-serving it would change nothing; a target that is already served is returned as it is."""
    entries, now = history(serving_root), current(serving_root)
    served = now.get("adapter_id") if now else None
    if to == "previous":
        at = next((i for i, e in enumerate(entries) if e.get("entry_id") == (now or {}).get("entry_id")),
                  len(entries))
        matches = [e for e in entries[:at] if e.get("adapter_id") != served]
    elif to in ADAPTER_METHODS:
        matches = [e for e in entries if e.get("method") == to and e.get("adapter_id") != served]
    else:
        matches = [e for e in entries if e.get("entry_id") == to]
        if not matches and len(to) >= 6:
            matches = [e for e in entries if str(e.get("adapter_id", "")).startswith(to)]
            if len({e["adapter_id"] for e in matches}) > 1:
                raise ValueError(f"{to!r} starts several adapter_ids; give more characters or an entry_id:\n"
                                 + _listing(matches, serving_root))
    if not matches:
        short = (" other than the served one" if to == "previous" or to in ADAPTER_METHODS else
                 " (an adapter_id prefix needs at least 6 characters)" if len(to) < 6 else "")
        raise ValueError(f"no promoted entry matches {to!r}{short}; give an entry_id, an adapter_id prefix, one of "
                         f"{', '.join(ADAPTER_METHODS)} or 'previous'. Promoted so far:\n"
                         + _listing(entries, serving_root))
    target = matches[-1]
    if now is not None and target.get("adapter_id") == served:
        return now
    return promote(serving_root, target,
                   f"rollback to {target['entry_id']} ({target['method']} {target['adapter_id']})")


def _cmd_promote(args, home: Callable[[], Path]) -> int:
    root = Path(home()) / "serving"
    try:
        if not args.list:
            print(json.dumps(rollback(root, args.to), indent=2, default=str))
            return 0
        entries, now = history(root), current(root)
        if not entries:
            raise ValueError(_listing(entries, root))
    except ValueError as exc:
        print(f"selfinstruct: {exc}\n{LIST_HINT}", file=sys.stderr)
        return 1
    from ..tables import format_table  # imports resources.project, hence Dagster: only the CLI needs it

    columns = ["", "entry_id", "method", "adapter_id", "cuad_match", "judge_score", "promoted_at", "reason"]
    rows = [("*" if e.get("entry_id") == (now or {}).get("entry_id") else "", e.get("entry_id"), e.get("method"),
             e.get("adapter_id"), _metric(e, "cuad_match"), _metric(e, "judge_score"), e.get("promoted_at"),
             e.get("reason")) for e in entries]
    print(format_table(columns, rows))
    return 0


def add_promote_parser(subparsers, home: Callable[[], Path]) -> None:
    """`selfinstruct promote --list | --to TARGET` on the `selfinstruct` CLI; serving lives in home()/serving."""
    p = subparsers.add_parser("promote", help="list the served adapter's history, or serve an earlier one")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--to", metavar="TARGET", help="an entry_id, an adapter_id prefix (6+ characters), "
                       f"a method ({', '.join(ADAPTER_METHODS)}) or 'previous'")
    group.add_argument("--list", action="store_true", help="print every promoted entry, '*' on the served one")
    p.set_defaults(func=lambda args: _cmd_promote(args, home))
