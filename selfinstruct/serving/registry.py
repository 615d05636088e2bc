"""The adapter users are served: a pointer to an immutable snapshot, with a history to roll back along.

Training overwrites `<home>/adapters/<method>`, so a promoted adapter is copied to `serving/adapters/<adapter_id>`
first. Each promotion is appended to `serving/history.jsonl` before `serving/current.json` is replaced, so a run
killed at any moment leaves the old pointer or the new one, each naming a complete snapshot.

Where: every function takes an optional `store` (`ArtifactsResource().store()`). None or a local store: the folder
`serving_root`, published by rename, exactly as before. An S3 store: the same three names under `serving/` of
SELFINSTRUCT_ARTIFACTS; a snapshot is an S3Store version (content-addressed, invisible until complete),
current.json one publish (its pointer is one put, so readers see the old entry or the new one), and an entry's
`path` is the snapshot's s3:// URI, which `served_adapter_dir` fetches into a local, sha256-checked copy.
history.jsonl on S3 is read, extended and published again: two promoters at once could lose a line. The serving
assets run in the DuckDB pool, one at a time; `selfinstruct promote --to` during such a run is the one way to race.

    snap = snapshot_adapter(home / "adapters" / best["method"], root, best["adapter_id"])  # root = home / "serving"
    promote(root, {**best, "path": str(snap), "scores": {"cuad_match": best["cuad_match"]},
                   "benchmark_run_id": best["run_id"]}, verdict["reason"])               # best, verdict: gate.py
    rollback(root, "previous")                                                          # serve the one before
    served_adapter_dir(root)                                                            # what to load, or None
    served_adapter_dir(root, store=artifacts.store())   # the same on S3: each call above takes store= too

Dagster-free; `selfinstruct promote` (cli/promote.py) is its command line.
"""

import json
import os
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeGuard

from selfinstruct.core.artifact_store import ArtifactNotFound, ArtifactStore, LocalStore
from selfinstruct.core.artifacts import (
    ADAPTER_FILES,
    ADAPTER_METHODS,
    missing_adapter_files,
    publish_dir,
    publish_file,
    serving_snapshot,
)
from selfinstruct.core.artifacts import serving_root as _serving_root
from selfinstruct.core.paths import relocated
from selfinstruct.core.s3_uri import is_s3_uri

ENTRY_KEYS = ("method", "adapter_id", "path", "scores", "benchmark_run_id")
SERVING = _serving_root(Path(""))  # the registry's name in an artifact store: serving/current.json, ...


def _remote(store: ArtifactStore | None) -> TypeGuard[ArtifactStore]:
    """The registry lives in `store` (S3) rather than in the local folder `serving_root`."""
    return store is not None and not isinstance(store, LocalStore)


def _name(*parts: str) -> str:
    return SERVING.joinpath(*parts).as_posix()


def location(serving_root: Path, store: ArtifactStore | None = None) -> str:
    """Where the registry lives (the folder, or s3://BUCKET/PREFIX/serving), for messages."""
    return store.uri(_name()) if _remote(store) else str(serving_root)


def snapshot_adapter(
    adapter_dir: Path, serving_root: Path, adapter_id: str, store: ArtifactStore | None = None
) -> Path | str:
    """An immutable copy of `adapter_dir` at serving_root/adapters/<adapter_id>, built aside, published by rename;
    with an S3 store, a version of serving/adapters/<adapter_id>, whose s3:// URI is returned."""
    if not isinstance(adapter_id, str) or not adapter_id or adapter_id[0] == "." or {"/", "\\"} & set(adapter_id):
        raise ValueError(f"adapter_id must be a plain folder name (benchmark_scores' adapter_id), got {adapter_id!r}")
    adapter_dir, final = Path(adapter_dir), serving_snapshot(serving_root, adapter_id)
    name = serving_snapshot(SERVING, adapter_id)
    # content-addressed: the same id names the same weights, so there is nothing to redo
    if _remote(store) and store.exists(name):
        return store.uri(name)
    if not _remote(store) and not missing_adapter_files(final):
        return final
    if missing := missing_adapter_files(adapter_dir):
        raise FileNotFoundError(
            f"{adapter_dir / missing[0]} is missing, so {adapter_dir} is not a complete adapter; "
            "train it again (python -m training <method> ...) or pick another candidate"
        )

    def copy(tmp: Path) -> None:
        for name in ADAPTER_FILES + ("training_metrics.json",):
            if (adapter_dir / name).is_file():
                shutil.copy2(adapter_dir / name, tmp / name)

    if _remote(store):  # a half-finished upload of this id is never read and is completed by this one
        return store.publish_dir(copy, name)
    if final.exists() and missing_adapter_files(final):  # a leftover edited by hand: nothing valid can point at it
        shutil.rmtree(final)
    return publish_dir(copy, final, replace=False)


class BrokenPointer(ValueError):
    """current.json exists but holds no promoted entry; the message names the file and the fix."""


POINTER_KEYS = ("entry_id", "method", "adapter_id", "path")  # what readers of the served entry use


def _read(serving_root: Path, store: ArtifactStore | None, file: str) -> tuple[str | None, str]:
    """The text of one registry file (None when it was never written) and where it lives, for messages."""
    if _remote(store):
        try:
            return store.read_bytes(_name(file)).decode(), store.uri(_name(file))
        except ArtifactNotFound:
            return None, store.uri(_name(file))
    path = Path(serving_root) / file
    return (path.read_text() if path.is_file() else None), str(path)


def current(serving_root: Path, store: ArtifactStore | None = None) -> dict | None:
    """The entry being served (serving_root/current.json), or None before the first promotion.

    BrokenPointer when the file is not JSON or not an entry (a list, a missing key, a key of the wrong type)."""
    text, path = _read(serving_root, store, "current.json")
    fix = (
        "serve an entry again with `selfinstruct promote --to <entry_id>` (`selfinstruct promote --list` "
        "shows them), which rewrites it"
    )
    try:
        entry = json.loads(text) if text is not None else None
    except json.JSONDecodeError as exc:
        raise BrokenPointer(f"{path} is not JSON ({exc}); {fix}") from exc
    if entry is None:
        return None
    if not isinstance(entry, dict):
        raise BrokenPointer(
            f"{path} holds a JSON {type(entry).__name__}, not a promoted entry (an object with "
            f"{', '.join(POINTER_KEYS)}); {fix}"
        )
    wrong = [k for k in POINTER_KEYS if not isinstance(entry.get(k), str) or not entry[k]]
    if wrong:
        raise BrokenPointer(f"{path} lacks a text value for {', '.join(wrong)}, so it names no promoted entry; {fix}")
    return entry


def history(serving_root: Path, store: ArtifactStore | None = None) -> list[dict]:
    """Every entry ever promoted, oldest first."""
    text, path = _read(serving_root, store, "history.jsonl")
    lines = text.split("\n") if text is not None else []
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


def _append_history(root: Path, store: ArtifactStore | None, line: str) -> None:
    if not _remote(store):
        root.mkdir(parents=True, exist_ok=True)
        _append_line(root / "history.jsonl", line)
        return
    assert store is not None  # _remote(store)
    # S3 appends nothing: read, extend, publish whole (see the module docstring for why no lock is needed).
    old = _read(root, store, "history.jsonl")[0] or ""
    store.publish_bytes(_name("history.jsonl"), (old[: old.rfind("\n") + 1] + line).encode())


def _publish_current(root: Path, store: ArtifactStore | None, text: str) -> None:
    if _remote(store):
        store.publish_bytes(_name("current.json"), text.encode())
    else:
        publish_file(lambda tmp: tmp.write_text(text), root / "current.json")


def adapter_dir(serving_root: Path, entry: dict, store: ArtifactStore | None = None) -> Path:
    """The folder an entry serves: its `path`, taken relative to the serving root unless absolute; with an S3
    store, a local copy of the snapshot its s3:// `path` names (downloaded once, checked against its manifest)."""
    if _remote(store):
        if not is_s3_uri(str(entry["path"])):
            raise ValueError(
                f"{entry['path']} is a local folder, but the serving registry is on "
                f"{location(serving_root, store)}; promote the s3:// URI snapshot_adapter(..., "
                "store=store) returned"
            )
        return store.fetch_dir(entry["path"])
    path = Path(entry["path"])
    # an absolute path recorded before the home was copied elsewhere resolves under the registry's new place
    return (relocated(path, Path(serving_root)) if path.is_absolute() else Path(serving_root) / path).resolve()


def entry_location(serving_root: Path, entry: dict, store: ArtifactStore | None = None) -> str:
    """Where an entry's snapshot lives, for metadata: its s3:// URI, else the local folder (nothing downloaded)."""
    return str(entry["path"]) if _remote(store) else str(adapter_dir(serving_root, entry))


def served_adapter_dir(serving_root: Path, store: ArtifactStore | None = None) -> Path | None:
    """The local folder of the adapter being served, or None before the first promotion."""
    entry = current(serving_root, store)
    return adapter_dir(serving_root, entry, store) if entry is not None else None


def promote(serving_root: Path, entry: dict, reason: str, store: ArtifactStore | None = None) -> dict:
    """Serve `entry` (a snapshot and its scores): append it to the history, then point current.json at it."""
    missing = [key for key in ENTRY_KEYS if key not in entry]
    if missing or not isinstance(entry["scores"], dict):
        raise ValueError(
            f"promote: the entry lacks {', '.join(missing) or 'a dict of scores'}; it needs "
            f"{', '.join(ENTRY_KEYS)}, scores being a dict such as {{'cuad_match': 0.4}}"
        )
    root = Path(serving_root)
    try:
        folder = adapter_dir(root, entry, store)
    except ArtifactNotFound:  # S3: no complete snapshot behind that URI
        folder = None
    if folder is None or not (folder / "adapter_model.safetensors").is_file():
        raise ValueError(
            f"promote: {entry['path'] if folder is None else folder} has no adapter_model.safetensors; "
            "promote the folder snapshot_adapter() returned, never a training output that the next "
            "run overwrites"
        )
    if not isinstance(reason, str) or not reason.strip():
        raise ValueError("promote: give a reason (a sentence such as gate()'s), so the history explains itself")
    if _remote(store):
        stored = str(entry["path"])
    else:  # Snapshots under the serving root are recorded relative to it, so a moved or copied home still serves.
        base = root.resolve()
        stored = str(folder.relative_to(base) if folder.is_relative_to(base) else folder)  # adapter_dir() resolved it
    stamp = {"entry_id": uuid.uuid4().hex[:10], "promoted_at": datetime.now(UTC).isoformat(), "reason": reason}
    record = {**{k: v for k, v in entry.items() if k not in stamp}, "path": stored, **stamp}
    # History first: a kill in between leaves an entry that was never served, not a pointer without a record.
    _append_history(root, store, json.dumps(record, default=str) + "\n")
    _publish_current(root, store, json.dumps(record, indent=2, default=str))
    return record


def listing(entries: list[dict], root: Path | str) -> str:
    lines = [
        f"  {e.get('entry_id')}  {e.get('method')}  {e.get('adapter_id')}  {e.get('promoted_at')}" for e in entries
    ]
    return "\n".join(lines) or f"  nothing yet in {root}: serving_model promotes the first adapter that passes its gate"


def rollback(serving_root: Path, to: str, store: ArtifactStore | None = None) -> dict:
    """Serve an earlier history entry again: `to` is an entry_id, an adapter_id prefix (6+ characters), a method
    (its latest other adapter) or "previous". Entries holding the served adapter are skipped for the last two,
    since re-serving it would change nothing; a target that is already served is returned as it is."""
    entries, where = history(serving_root, store), location(serving_root, store)
    try:
        now = current(serving_root, store)
    except BrokenPointer:
        if to == "previous":  # "before the served one" means nothing while no entry is served
            raise
        now = None  # an explicit target is served whatever the broken pointer said: that is the repair
    served = now.get("adapter_id") if now else None
    if to == "previous":
        at = next((i for i, e in enumerate(entries) if e.get("entry_id") == (now or {}).get("entry_id")), len(entries))
        matches = [e for e in entries[:at] if e.get("adapter_id") != served]
    elif to in ADAPTER_METHODS:
        matches = [e for e in entries if e.get("method") == to and e.get("adapter_id") != served]
    else:
        matches = [e for e in entries if e.get("entry_id") == to]
        if not matches and len(to) >= 6:
            matches = [e for e in entries if str(e.get("adapter_id", "")).startswith(to)]
            if len({e["adapter_id"] for e in matches}) > 1:
                raise ValueError(
                    f"{to!r} starts several adapter_ids; give more characters or an entry_id:\n"
                    + listing(matches, where)
                )
    if not matches:
        short = (
            " other than the served one"
            if to == "previous" or to in ADAPTER_METHODS
            else " (an adapter_id prefix needs at least 6 characters)"
            if len(to) < 6
            else ""
        )
        raise ValueError(
            f"no promoted entry matches {to!r}{short}; give an entry_id, an adapter_id prefix, one of "
            f"{', '.join(ADAPTER_METHODS)} or 'previous'. Promoted so far:\n" + listing(entries, where)
        )
    target = matches[-1]
    if now is not None and target.get("adapter_id") == served:
        return now
    return promote(
        serving_root, target, f"rollback to {target['entry_id']} ({target['method']} {target['adapter_id']})", store
    )
