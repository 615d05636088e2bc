"""Parse a CUAD release into contracts, (contract, category) annotations and counted rejects.

Dagster-free. `load_cuad(archive)` reads `master_clauses.csv` (or the SQuAD-form `CUAD_v1.json`)
and `full_contract_txt/*.txt`; every row or file it cannot use lands in `rejects` with a reason.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import io
import json
import re
import sys
import unicodedata
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from selfinstruct.corpus.categories import (
    CUAD_CATEGORIES,
    descriptions_from_csv,
    descriptions_from_readme,
    match_descriptions,
    missing_categories,
    question_for,
)
from selfinstruct.corpus.source import CuadArchive, CuadSourceError
from selfinstruct.corpus.spans import NormalizedText, split_omitted

csv.field_size_limit(sys.maxsize)
_ANSWER = re.compile(r"-\s*Answer$")


@dataclass
class CuadCorpus:
    contracts: list[dict] = field(default_factory=list)
    annotations: list[dict] = field(default_factory=list)
    rejects: list[dict] = field(default_factory=list)
    stats: dict = field(default_factory=dict)


def fold_name(name: str) -> str:
    """NFKD-folded, alphanumeric-only, lower-cased stem: pairs CSV file names with txt files."""
    stem = re.sub(r"[\W_]+$", "", PurePosixPath(name).name.strip())
    for ext in (".pdf", ".txt"):
        if stem.lower().endswith(ext):
            stem = stem[: -len(ext)]
    decomposed = unicodedata.normalize("NFKD", stem)
    return "".join(c for c in decomposed if c.isalnum() and not unicodedata.combining(c)).lower()


def contract_id_for(name: str) -> str:
    return hashlib.sha256(fold_name(name).encode()).hexdigest()[:16]


def split_for(contract_id: str, eval_fraction: float) -> str:
    """Deterministic contract-level split: a contract is 'eval' iff its hash bucket is below the fraction."""
    bucket = int(hashlib.sha256(f"split:{contract_id}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "eval" if bucket < eval_fraction else "train"


def _reject(corpus: CuadCorpus, source: str, row: int | None, reason: str, action: str = "skipped") -> None:
    corpus.rejects.append({"source": source, "row": row, "reason": reason, "action": action})


def _decode(corpus: CuadCorpus, name: str, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        _reject(corpus, name, None, f"not valid UTF-8 at byte {exc.start}; decoded as cp1252", "repaired")
        return data.decode("cp1252", errors="replace")


def _category_descriptions(archive: CuadArchive, names: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in names:
        base = PurePosixPath(name).name
        if base == "CUAD_v1_README.txt":
            out.update(descriptions_from_readme(archive.read(name).decode("utf-8", "replace")))
        elif base == "category_descriptions.csv":
            out.update(descriptions_from_csv(archive.read(name).decode("utf-8", "replace")))
    return out


def load_contract_texts(
    archive: CuadArchive, names: list[str], corpus: CuadCorpus, eval_fraction: float
) -> dict[str, dict]:
    """Read every full_contract_txt/*.txt once; returns {folded name: contract row}."""
    by_key: dict[str, dict] = {}
    by_sha: dict[str, str] = {}
    duplicates = corpus.stats.setdefault("_duplicates", {})
    # Shortest name first, so 'X.txt' is kept and its copy 'X(1).txt' is the reported duplicate.
    # Archives zipped on a Mac carry __MACOSX/.../._NAME resource forks beside each file: metadata, not contracts.
    txt_names = [
        n
        for n in names
        if "full_contract_txt/" in n
        and n.lower().endswith(".txt")
        and "__MACOSX/" not in n
        and not PurePosixPath(n).name.startswith("._")
    ]
    for name in sorted(txt_names, key=lambda n: (len(n), n)):
        text = _decode(corpus, name, archive.read(name))
        key = fold_name(name)
        if not text.strip():
            _reject(corpus, name, None, "empty contract text")
            continue
        sha = hashlib.sha256(text.encode()).hexdigest()
        if sha in by_sha:
            _reject(corpus, name, None, f"duplicate contract: same text as {by_sha[sha]}")
            duplicates[key] = by_sha[sha]
            continue
        if key in by_key:
            _reject(corpus, name, None, f"file name folds to the same key as {by_key[key]['source_file']}")
            continue
        cid = contract_id_for(name)
        by_sha[sha] = name
        by_key[key] = {
            "contract_id": cid,
            "title": PurePosixPath(name).stem,
            "source_file": PurePosixPath(name).name,
            "text": text,
            "n_chars": len(text),
            "sha256": sha,
            "split": split_for(cid, eval_fraction),
        }
    return by_key


def _annotation(
    contract: dict,
    norm: NormalizedText,
    category: str,
    question: str,
    clauses: list[str],
    normalized_answer: str | None,
) -> dict:
    texts, starts, ends, unlocated = [], [], [], 0
    for clause in clauses:
        for piece in split_omitted(clause):
            texts.append(piece)
            span = norm.locate(piece)
            if span is None:
                unlocated += 1
            else:
                starts.append(span[0])
                ends.append(span[1])
    return {
        "contract_id": contract["contract_id"],
        "category": category,
        "question": question,
        "answer_texts": texts,
        "answer_starts": starts,
        "answer_ends": ends,
        "n_unlocated": unlocated,
        "normalized_answer": normalized_answer,
        "is_impossible": not texts,
    }


def _records(reader, csv_name: str, corpus: CuadCorpus):
    """(row number, cells) of each record; a record the csv module cannot parse ends the file with one reject."""
    rowno = 1
    while True:
        rowno += 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            _reject(
                corpus,
                csv_name,
                rowno,
                f"row cannot be parsed as CSV ({exc}); it and every row after it "
                f"are skipped: fix the quoting of {csv_name} from this row on",
            )
            return
        yield rowno, row


def _require_cuad_columns(csv_name: str, columns: list[str]) -> None:
    """A master_clauses.csv without every CUAD category would make a corpus with fewer questions, silently."""
    missing, unknown = missing_categories(columns)
    if not missing:
        return
    shown = ", ".join(repr(c) for c in missing)
    extra = f"; its columns that are no CUAD category: {', '.join(repr(c) for c in unknown)}" if unknown else ""
    raise CuadSourceError(
        f"{csv_name} lacks {len(missing)} of CUAD's {len(CUAD_CATEGORIES)} category columns ({shown}){extra}. "
        "Each category needs its column (and its '-Answer' column): use the official CUAD_v1.zip, or point "
        "SELFINSTRUCT_CUAD_URI at a release whose master_clauses.csv has all of them"
    )


def _annotations_from_csv(
    archive: CuadArchive, csv_name: str, contracts: dict[str, dict], descriptions: dict[str, str], corpus: CuadCorpus
) -> None:
    raw = archive.read(csv_name).decode("utf-8-sig", errors="replace")
    # newline="": the csv module handles \r, \n and quoted line breaks itself (a bare \r in a field otherwise raises).
    reader = csv.reader(io.StringIO(raw, newline=""))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise CuadSourceError(
            f"{csv_name}: the header line cannot be parsed as CSV ({exc}); is this CUAD's master_clauses.csv?"
        ) from exc
    if not header or header[0] != "Filename":
        raise CuadSourceError(
            f"{csv_name}: first column must be 'Filename' (got {header[:1] if header else 'nothing'}); is this CUAD's master_clauses.csv?"
        )
    # 'Notice Period To Terminate Renewal- Answer': the suffix's spacing varies.
    answer_of = {_ANSWER.sub("", h).strip(): i for i, h in enumerate(header) if _ANSWER.search(h)}
    cats = [(i, h) for i, h in enumerate(header) if i > 0 and not _ANSWER.search(h)]
    _require_cuad_columns(csv_name, [h for _, h in cats])
    answer_col = {h: answer_of[h] for _, h in cats if h in answer_of}
    matched = match_descriptions([h for _, h in cats], descriptions, fold_name)
    questions = {cat: question_for(cat, d) for cat, d in matched.items()}
    seen: set[str] = set()
    for rowno, row in _records(reader, csv_name, corpus):
        if not row or not row[0].strip():
            _reject(corpus, csv_name, rowno, "row without a Filename")
            continue
        if len(row) != len(header):
            # A cut or misquoted row must not turn its missing cells into "no clause" gold labels.
            _reject(
                corpus,
                csv_name,
                rowno,
                f"row has {len(row)} of {len(header)} columns; the CSV is cut short or misquoted here: "
                f"fix this row of {csv_name} so it has one cell per header column",
            )
            continue
        key = fold_name(row[0])
        contract = contracts.get(key)
        if contract is None:
            dup_of = corpus.stats.get("_duplicates", {}).get(key)
            reason = (
                f"{row[0]!r} is a duplicate of {dup_of}; that file's own row is kept"
                if dup_of
                else f"no full_contract_txt file matches {row[0]!r}; add the txt file or fix the Filename"
            )
            _reject(corpus, csv_name, rowno, reason)
            continue
        if key in seen:
            _reject(corpus, csv_name, rowno, f"second row for {row[0]!r}; the first is kept")
            continue
        seen.add(key)
        norm = NormalizedText.of(contract["text"])
        for col, cat in cats:
            cell = row[col]
            try:
                clauses = ast.literal_eval(cell) if cell.strip() else []
                if not isinstance(clauses, list):
                    raise ValueError("not a list")
            # literal_eval of outside text also raises TypeError ('{[]: 1}') and, deeply nested, RecursionError.
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
                _reject(
                    corpus,
                    csv_name,
                    rowno,
                    f"column {cat!r} is not a list literal ({type(exc).__name__}: {str(exc)[:200]})",
                )
                continue
            ans = row[answer_col[cat]] if cat in answer_col else None
            corpus.annotations.append(
                _annotation(contract, norm, cat, questions[cat], [str(c) for c in clauses], ans or None)
            )


def _annotations_from_squad(
    archive: CuadArchive,
    json_name: str,
    contracts: dict[str, dict],
    descriptions: dict[str, str],
    corpus: CuadCorpus,
    eval_fraction: float,
) -> None:
    data = json.loads(archive.read(json_name))
    for doc in data.get("data", []):
        title = doc.get("title", "")
        for para in doc.get("paragraphs", []):
            key = fold_name(title)
            if key not in contracts:
                text = para.get("context", "")
                cid = contract_id_for(title)
                contracts[key] = {
                    "contract_id": cid,
                    "title": title,
                    "source_file": json_name,
                    "text": text,
                    "n_chars": len(text),
                    "sha256": hashlib.sha256(text.encode()).hexdigest(),
                    "split": split_for(cid, eval_fraction),
                }
            contract = contracts[key]
            norm = NormalizedText.of(contract["text"])
            for qa in para.get("qas", []):
                cat = qa.get("id", "").rsplit("__", 1)[-1]
                clauses = [a["text"] for a in qa.get("answers", [])]
                question = question_for(cat, match_descriptions([cat], descriptions, fold_name)[cat])
                corpus.annotations.append(_annotation(contract, norm, cat, question, clauses, None))


def load_cuad(archive: CuadArchive, eval_fraction: float = 0.2) -> CuadCorpus:
    """Contracts, annotations and rejects of one CUAD release."""
    corpus = CuadCorpus()
    names = archive.names()
    csv_names = [n for n in names if PurePosixPath(n).name == "master_clauses.csv"]
    json_names = [n for n in names if PurePosixPath(n).name in ("CUAD_v1.json", "CUADv1.json")]
    if not csv_names and not json_names:
        raise CuadSourceError(
            f"{archive.location}: neither master_clauses.csv nor CUAD_v1.json found. Expected the official "
            "CUAD_v1.zip layout (CUAD_v1/master_clauses.csv, CUAD_v1/full_contract_txt/*.txt)."
        )
    descriptions = _category_descriptions(archive, names)
    contracts = load_contract_texts(archive, names, corpus, eval_fraction)
    if not contracts and not json_names:
        raise CuadSourceError(f"{archive.location}: no readable full_contract_txt/*.txt files.")
    if csv_names:
        _annotations_from_csv(archive, csv_names[0], contracts, descriptions, corpus)
    else:
        _annotations_from_squad(archive, json_names[0], contracts, descriptions, corpus, eval_fraction)
    corpus.contracts = sorted(contracts.values(), key=lambda c: c["contract_id"])
    annotated = {a["contract_id"] for a in corpus.annotations}
    spans = sum(len(a["answer_texts"]) for a in corpus.annotations)
    unlocated = sum(a["n_unlocated"] for a in corpus.annotations)
    corpus.stats.pop("_duplicates", None)
    corpus.stats = {
        "contracts": len(corpus.contracts),
        "contracts_without_annotations": sum(c["contract_id"] not in annotated for c in corpus.contracts),
        "annotations": len(corpus.annotations),
        "answerable": sum(not a["is_impossible"] for a in corpus.annotations),
        "clause_pieces": spans,
        "clause_pieces_unlocated": unlocated,
        "categories_with_description": len(descriptions),
        "rejects": len(corpus.rejects),
        "eval_contracts": sum(c["split"] == "eval" for c in corpus.contracts),
    }
    return corpus
