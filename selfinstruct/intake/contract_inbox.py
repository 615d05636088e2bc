"""New contracts from the contracts inbox: `.txt` files and CUAD-layout `.zip` files, with counted rejects.

Dagster-free. The inbox is any object with `.files()` (entries with `.name`, sorted by name) and
`.read(name) -> bytes`, such as the local-folder or S3 inbox resource. Texts are read by the CUAD
loader's own `load_contract_texts`, so a contract gets the same `contract_id`, `sha256` and split
whether it came in the initial CUAD load, as a lone `.txt`, or inside a zip:

    contracts, rejects = read_contract_files(inbox, known_sha256={c["sha256"]: c["contract_id"] for c in loaded})
    for c in contracts:
        print(c["contract_id"], c["split"], c["inbox_file"])
    one = contract_by_id(inbox, contracts[0]["contract_id"])   # what a partitioned asset loads
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath

from selfinstruct.core.inbox_types import InboxEntryError
from selfinstruct.core.zips import DamagedZip, open_checked_zip
from selfinstruct.corpus.cuad import CuadCorpus, contract_id_for, load_contract_texts
from selfinstruct.corpus.source import CuadArchive, CuadSourceError

CONTRACT_COLUMNS = ("contract_id", "title", "source_file", "text", "n_chars", "sha256", "split", "inbox_file")
REJECT_COLUMNS = ("source", "row", "reason", "action")
_TEXT_DIR = "full_contract_txt/"


class _OneText:
    """A lone inbox `.txt` seen as a CUAD release holding just that file, for `load_contract_texts`."""

    def __init__(self, name: str, data: bytes) -> None:
        self.member = _TEXT_DIR + PurePosixPath(name).name
        self._data = data

    def names(self) -> list[str]:
        return [self.member]

    def read(self, name: str) -> bytes:
        return self._data


def _where(inbox) -> str:
    return str(getattr(inbox, "location", inbox))


def _reject(source: str, reason: str, action: str = "skipped") -> dict:
    return {"source": source, "row": None, "reason": reason, "action": action}


def _read_texts(
    archive, names: list[str], source_of, inbox_file: str, eval_fraction: float
) -> tuple[list[dict], list[dict]]:
    corpus = CuadCorpus()
    rows = load_contract_texts(archive, names, corpus, eval_fraction).values()
    rejects = [{**r, "source": source_of(r["source"])} for r in corpus.rejects]
    # Kept rows have distinct folded names, hence distinct base names: this finds each row's member.
    member_of = {PurePosixPath(n).name: n for n in names if _TEXT_DIR in n}
    contracts = [
        {**c, "inbox_file": inbox_file, "_source": source_of(member_of[c["source_file"]])}
        for c in sorted(rows, key=lambda c: c["source_file"])
    ]
    return contracts, rejects


def _from_txt(name: str, data: bytes, eval_fraction: float) -> tuple[list[dict], list[dict]]:
    one = _OneText(name, data)
    return _read_texts(one, one.names(), lambda _member: name, name, eval_fraction)


def _from_zip(name: str, data: bytes, eval_fraction: float) -> tuple[list[dict], list[dict]]:
    try:
        # Every CRC is checked up front, so a damaged zip is one reject rather than half its contracts.
        zf = open_checked_zip(data)
    except DamagedZip as exc:
        why = str(exc) if str(exc).startswith("not a readable") else f"not a readable zip archive ({exc})"
        return [], [_reject(name, f"{why}; upload it again")]
    with zf:
        archive = CuadArchive(location=name, _zip=zf)
        members = archive.names()
        if not any(_TEXT_DIR in m and m.lower().endswith(".txt") for m in members):
            return [], [
                _reject(
                    name,
                    "no full_contract_txt/*.txt files in the zip; use the CUAD_v1 layout "
                    "(master_clauses.csv + full_contract_txt/*.txt) or drop the .txt files alone",
                )
            ]
        try:
            return _read_texts(archive, members, lambda member: f"{name}:{member}", name, eval_fraction)
        except CuadSourceError as exc:
            return [], [_reject(name, f"not a readable zip archive ({exc})")]


# PDF and Word files are refused by name rather than read: their text layer is often missing (scans) or out of
# reading order, and a contract read wrongly would be indexed and quoted as if it were right. Converting is one
# command a person can check.
_HOW_TO_CONVERT = {
    ".pdf": "a PDF is not read (its text may be a scan or out of reading order); extract its text, e.g. "
    "`pdftotext -layout 'NAME' 'STEM.txt'`, check it, and drop the .txt",
    ".docx": "a Word file is not read; save it as text (Word: File > Save As > Plain Text, UTF-8, or "
    "`pandoc 'NAME' -t plain -o 'STEM.txt'`) and drop the .txt",
    ".doc": "a Word file is not read; save it as text (Word: File > Save As > Plain Text, UTF-8) and drop the .txt",
}


def unsupported_reason(name: str) -> str:
    """Why the contracts inbox does not take `name`, and how to turn it into a file it takes."""
    suffix = PurePosixPath(name).suffix.lower()
    stem = PurePosixPath(name).stem
    if suffix in _HOW_TO_CONVERT:
        return _HOW_TO_CONVERT[suffix].replace("NAME", name).replace("STEM", stem)
    return f"unsupported file type {suffix or '(none)'!r}; drop a .txt contract or a CUAD-layout .zip"


def unsupported_files(inbox) -> list[tuple[str, str]]:
    """(name, reason) of every file in the inbox of a type it does not take (inboxes without `others()`: none)."""
    others = getattr(inbox, "others", None)
    return [(f.name, unsupported_reason(f.name)) for f in others()] if others else []


def _read_file(inbox, name: str, eval_fraction: float) -> tuple[list[dict], list[dict]]:
    suffix = PurePosixPath(name).suffix.lower()
    if suffix not in (".txt", ".zip"):
        return [], [_reject(name, unsupported_reason(name))]
    try:
        data = inbox.read(name)
    except FileNotFoundError:
        return [], [_reject(name, f"not in the contracts inbox {_where(inbox)} (removed while being read)")]
    except InboxEntryError as exc:  # this entry only: the other files are still read
        return [], [_reject(name, f"file not read: {exc}")]
    return (_from_txt if suffix == ".txt" else _from_zip)(name, data, eval_fraction)


def read_contract_files(
    inbox, names: Sequence[str] | None = None, known_sha256: Mapping[str, str] = {}, eval_fraction: float = 0.2
) -> tuple[list[dict], list[dict]]:
    """(contracts, rejects) of the named inbox files (all listed files when `names` is None), in name order.

    `known_sha256` maps the text hash of every contract already registered to its contract_id; a
    contract repeating one of those, or one read earlier in this call, is a counted duplicate.
    """
    if not 0.0 <= eval_fraction <= 1.0:
        raise ValueError(f"eval_fraction must be within [0, 1], got {eval_fraction}")
    present = [f.name for f in inbox.files()]
    if names is None:  # a file of another type is reported, never passed over in silence
        present += [name for name, _ in unsupported_files(inbox)]
    wanted = sorted(present if names is None else set(names))
    listed = set(present)
    contracts: list[dict] = []
    rejects: list[dict] = []
    seen_sha = dict(known_sha256)
    seen_id: dict[str, str] = {}
    for name in wanted:
        if name not in listed:
            # The sensor saw it, but it is gone or not complete yet: say so rather than drop it.
            reason = f"not in the contracts inbox {_where(inbox)} (removed or still being written)"
            rejects.append(_reject(name, reason))
            continue
        found, bad = _read_file(inbox, name, eval_fraction)
        rejects.extend(bad)
        for c in found:
            source = c["_source"]
            if c["sha256"] in seen_sha:
                rejects.append(_reject(source, f"duplicate contract: same text as {seen_sha[c['sha256']]}"))
            elif c["contract_id"] in seen_id:
                # Two different texts under one id would be two versions of one partition.
                rejects.append(
                    _reject(
                        source,
                        f"file name folds to the same contract id {c['contract_id']} as "
                        f"{seen_id[c['contract_id']]}; rename one of them",
                    )
                )
            else:
                seen_sha[c["sha256"]] = c["contract_id"]
                seen_id[c["contract_id"]] = source
                contracts.append({k: c[k] for k in CONTRACT_COLUMNS})
    return contracts, rejects


def contract_by_id(inbox, contract_id: str, known_sha256: Mapping[str, str] = {}, eval_fraction: float = 0.2) -> dict:
    """The one contract with `contract_id` in the inbox; KeyError naming the inbox and the id if absent."""
    # A .txt's id follows from its name, so only matching .txt files and the zips (whose members are
    # unknown until opened) need reading. A contract that was kept on a full read is kept on this
    # subset too, since the subset holds fewer earlier files it could repeat.
    names = [
        f.name
        for f in inbox.files()
        if f.name.lower().endswith(".zip")
        or (f.name.lower().endswith(".txt") and contract_id_for(f.name) == contract_id)
    ]
    # The registered contract's own hash is usually among the known ones; it does not duplicate itself.
    others = {sha: cid for sha, cid in known_sha256.items() if cid != contract_id}
    contracts, rejects = read_contract_files(inbox, names, others, eval_fraction)
    for c in contracts:
        if c["contract_id"] == contract_id:
            return c
    why = [
        f"{r['source']}: {r['reason']}"
        for r in rejects
        if contract_id_for(r["source"].rsplit(":", 1)[-1]) == contract_id
    ]
    raise KeyError(
        f"contract {contract_id} is not in the contracts inbox {_where(inbox)}"
        + (
            f"; rejected there: {'; '.join(why)}"
            if why
            else " (its file was removed or renamed); drop the file back in or delete the partition"
        )
    )
