"""Contracts inbox: .txt and CUAD-layout .zip files become contracts with the CUAD loader's ids, or counted rejects."""

import hashlib
import re
import zipfile
from pathlib import Path, PurePosixPath
from typing import NamedTuple

import pytest
from conftest import subset_archive, txt_name_for

from selfinstruct.corpus.cuad import contract_id_for, load_cuad, split_for
from selfinstruct.corpus.source import open_cuad_source
from selfinstruct.intake.contract_inbox import CONTRACT_COLUMNS, contract_by_id, read_contract_files


class InboxFile(NamedTuple):
    name: str
    size: int
    modified: float


class FolderInbox:
    """Test double of the inbox resource: a folder with files() and read()."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.location = str(root)

    def files(self) -> list[InboxFile]:
        return [
            InboxFile(p.name, p.stat().st_size, p.stat().st_mtime) for p in sorted(self.root.iterdir()) if p.is_file()
        ]

    def read(self, name: str) -> bytes:
        return (self.root / name).read_bytes()

    def put(self, name: str, data: bytes) -> str:
        (self.root / name).write_bytes(data)
        return name


def nth_text(members: dict, i: int) -> tuple[str, bytes]:
    """(base file name, bytes) of the i-th contract of the CSV, as in full_contract_txt."""
    member = txt_name_for(members["rows"][i][0], members["texts"])
    return PurePosixPath(member).name, members["texts"][member]


@pytest.fixture
def inbox(tmp_path) -> FolderInbox:
    return FolderInbox(tmp_path / "inbox")


def test_txt_contract_gets_the_cuad_id_and_split(cuad_members, inbox):
    name, data = nth_text(cuad_members, 0)
    inbox.put(name, data)
    contracts, rejects = read_contract_files(inbox)
    assert rejects == []
    [c] = contracts
    assert tuple(c) == CONTRACT_COLUMNS
    assert c["contract_id"] == contract_id_for(name)
    assert c["split"] == split_for(c["contract_id"], 0.2)
    assert c["text"] == data.decode("utf-8-sig") and c["n_chars"] == len(c["text"])
    assert c["sha256"] == hashlib.sha256(c["text"].encode()).hexdigest()
    assert (c["source_file"], c["title"], c["inbox_file"]) == (name, PurePosixPath(name).stem, name)
    [everything_eval], _ = read_contract_files(inbox, eval_fraction=1.0)
    assert everything_eval["split"] == "eval"


def test_zip_contract_matches_txt_and_cuad_loader(cuad_members, inbox, tmp_path):
    name, data = nth_text(cuad_members, 0)
    subset_archive(cuad_members, inbox.root / "0-batch.zip", 2)
    from_zip, rejects = read_contract_files(inbox)
    assert rejects == [] and {c["inbox_file"] for c in from_zip} == {"0-batch.zip"}
    archive = open_cuad_source(str(inbox.root / "0-batch.zip"), tmp_path / "cache")
    try:
        loaded = load_cuad(archive).contracts
    finally:
        archive.close()
    key = ("contract_id", "split", "sha256", "source_file")
    assert sorted(tuple(c[k] for k in key) for c in from_zip) == sorted(tuple(c[k] for k in key) for c in loaded)
    inbox.put(name, data)
    contracts, rejects = read_contract_files(inbox)
    # "0-batch.zip" sorts first, so the txt copy of its first contract is the duplicate.
    assert [c["inbox_file"] for c in contracts] == ["0-batch.zip", "0-batch.zip"]
    assert contract_id_for(name) in {c["contract_id"] for c in contracts}
    assert rejects == [
        {
            "source": name,
            "row": None,
            "action": "skipped",
            "reason": f"duplicate contract: same text as {contract_id_for(name)}",
        }
    ]


def test_cp1252_text_is_repaired_and_recorded(inbox):
    inbox.put("Supply Agreement.txt", "Signed in Z\u00fcrich \u2013 end".encode("cp1252"))
    [c], [rej] = read_contract_files(inbox)
    assert c["text"] == "Signed in Z\u00fcrich \u2013 end"
    assert rej["source"] == "Supply Agreement.txt" and rej["action"] == "repaired"
    assert "not valid UTF-8" in rej["reason"]


def test_bom_is_accepted_and_empty_file_rejected(inbox):
    inbox.put("a.txt", b"\xef\xbb\xbfLicense agreement between A and B.")
    inbox.put("b.txt", b"  \n\t\n")
    contracts, rejects = read_contract_files(inbox)
    assert [c["text"] for c in contracts] == ["License agreement between A and B."]
    assert rejects == [{"source": "b.txt", "row": None, "reason": "empty contract text", "action": "skipped"}]


def test_duplicates_of_known_and_of_earlier_files_are_rejected(inbox):
    text = b"Distribution agreement between Alpha Inc. and Beta LLC."
    inbox.put("Alpha.txt", text)
    inbox.put("Alpha copy.txt", text)
    sha = hashlib.sha256(text).hexdigest()
    contracts, rejects = read_contract_files(inbox)
    assert [c["source_file"] for c in contracts] == ["Alpha copy.txt"]
    assert [(r["source"], r["reason"]) for r in rejects] == [
        ("Alpha.txt", f"duplicate contract: same text as {contract_id_for('Alpha copy.txt')}")
    ]
    contracts, rejects = read_contract_files(inbox, known_sha256={sha: "0123456789abcdef"})
    assert contracts == []
    assert {r["reason"] for r in rejects} == {"duplicate contract: same text as 0123456789abcdef"}
    assert len(rejects) == 2


def test_same_id_with_other_text_is_rejected(inbox):
    inbox.put("Alpha.txt", b"Version one of the agreement.")
    inbox.put("ALPHA_.txt", b"Version two of the agreement.")
    contracts, [rej] = read_contract_files(inbox)
    assert [c["source_file"] for c in contracts] == ["ALPHA_.txt"]
    assert rej["source"] == "Alpha.txt" and "same contract id" in rej["reason"] and "ALPHA_.txt" in rej["reason"]


def crc_broken_zip(path: Path) -> bytes:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("CUAD_v1/full_contract_txt/X.txt", b"Agreement text " * 20)
    data = bytearray(path.read_bytes())
    at = data.index(b"Agreement text")
    data[at] ^= 0xFF
    return bytes(data)


@pytest.mark.parametrize("corrupt", ["garbage", "truncated", "crc"])
def test_corrupt_zip_is_rejected_and_others_still_load(corrupt, cuad_members, inbox, tmp_path):
    good = subset_archive(cuad_members, tmp_path / "good.zip", 2)
    data = {
        "garbage": b"this is not a zip file",
        "truncated": good.read_bytes()[: good.stat().st_size // 2],
        "crc": crc_broken_zip(tmp_path / "crc.zip"),
    }[corrupt]
    inbox.put("a-bad.zip", data)
    name, text = nth_text(cuad_members, 5)
    inbox.put(name, text)
    contracts, [rej] = read_contract_files(inbox)
    assert [c["source_file"] for c in contracts] == [name]
    assert rej["source"] == "a-bad.zip" and rej["reason"].startswith("not a readable zip archive (")


def test_zip_without_contract_texts_and_unsupported_file(inbox):
    with zipfile.ZipFile(inbox.root / "notes.zip", "w") as zf:
        zf.writestr("readme.md", "no contracts here")
    inbox.put("scan.pdf", b"%PDF-1.4")
    contracts, rejects = read_contract_files(inbox)
    assert contracts == []
    assert [r["source"] for r in rejects] == ["notes.zip", "scan.pdf"]
    assert "no full_contract_txt/*.txt" in rejects[0]["reason"]
    assert rejects[1]["reason"].startswith("a PDF is not read") and "pdftotext" in rejects[1]["reason"]


def test_names_filter_reads_only_named_files_in_name_order(cuad_members, inbox):
    names = [inbox.put(*nth_text(cuad_members, i)) for i in range(3)]
    contracts, rejects = read_contract_files(inbox, names=[names[2], names[0]])
    assert [c["inbox_file"] for c in contracts] == sorted([names[2], names[0]])
    assert rejects == []
    contracts, [rej] = read_contract_files(inbox, names=["gone.txt", names[1]])
    assert [c["inbox_file"] for c in contracts] == [names[1]]
    assert rej["source"] == "gone.txt" and "not in the contracts inbox" in rej["reason"]


def test_contract_by_id_finds_txt_and_zip_member(cuad_members, inbox):
    name, data = nth_text(cuad_members, 0)
    inbox.put(name, data)
    subset_archive(cuad_members, inbox.root / "0-batch.zip", 2, start=3)
    in_zip, _ = nth_text(cuad_members, 4)
    own = {hashlib.sha256(data.decode("utf-8-sig").encode()).hexdigest(): contract_id_for(name)}
    found = contract_by_id(inbox, contract_id_for(name), known_sha256=own)
    assert found["inbox_file"] == name and found["text"] == data.decode("utf-8-sig")
    member = contract_by_id(inbox, contract_id_for(in_zip))
    assert member["inbox_file"] == "0-batch.zip" and member["source_file"] == in_zip


def test_contract_by_id_missing_names_inbox_and_id(cuad_members, inbox):
    name, data = nth_text(cuad_members, 0)
    inbox.put(name, data)
    cid = contract_id_for(name)
    (inbox.root / name).unlink()
    with pytest.raises(KeyError, match=rf"{cid} is not in the contracts inbox {re.escape(str(inbox.root))}.*removed"):
        contract_by_id(inbox, cid)
    inbox.put("empty.txt", b"")
    with pytest.raises(KeyError, match=r"rejected there: empty.txt: empty contract text"):
        contract_by_id(inbox, contract_id_for("empty.txt"))


def test_every_file_in_the_contracts_inbox_is_taken_or_reported_by_name(tmp_path):
    from selfinstruct.core.inbox import inbox_for
    from selfinstruct.intake.triggers import contracts_decision

    inbox = inbox_for("contracts", root=str(tmp_path))
    folder = tmp_path / "contracts"
    folder.mkdir()
    (folder / "Supply Agreement.txt").write_text("This Supply Agreement is made between A and B.\n")
    (folder / "Lease.pdf").write_bytes(b"%PDF-1.4\n")
    (folder / "Licence.DOCX").write_bytes(b"PK\x03\x04")
    (folder / "notes.rtf").write_bytes(b"{\\rtf1}")
    (folder / "Other.txt.tmp").write_text("being written")  # the publish protocol: never reported
    (folder / ".hidden.pdf").write_bytes(b"%PDF")  # hidden: not the inbox's business

    d, _ = contracts_decision(inbox, None, {}, cuad_ids=set())
    assert d.request and len(d.items) == 1  # the .txt is taken
    reported = dict(d.skipped)
    assert sorted(reported) == ["Lease.pdf", "Licence.DOCX", "notes.rtf"]
    assert "PDF" in reported["Lease.pdf"] and "pdftotext -layout" in reported["Lease.pdf"]
    assert "Word" in reported["Licence.DOCX"] and "Plain Text" in reported["Licence.DOCX"]
    assert "'.rtf'" in reported["notes.rtf"] and ".txt" in reported["notes.rtf"]
    assert "Lease.pdf" in d.reason and "notes.rtf" in d.reason

    again, _ = contracts_decision(inbox, d.cursor, {}, cuad_ids=set())  # nothing new: the tick still says why
    assert not again.request and "Lease.pdf" in again.reason

    contracts, rejects = read_contract_files(inbox)  # what the asset reads reports them too
    assert [c["inbox_file"] for c in contracts] == ["Supply Agreement.txt"]
    assert sorted(r["source"] for r in rejects) == ["Lease.pdf", "Licence.DOCX", "notes.rtf"]
