"""Loading CUAD: the full local copy, splits, and every kind of bad input the issue names."""

import hashlib

import pytest
from conftest import ROOT, subset_archive, txt_name_for, write_archive

from selfinstruct.corpus.cuad import load_cuad, split_for
from selfinstruct.corpus.source import CuadSourceError, open_cuad_source


def load(path, tmp_path):
    archive = open_cuad_source(str(path), tmp_path / "cache")
    try:
        return load_cuad(archive)
    finally:
        archive.close()


def test_full_local_copy(cuad_zip, tmp_path):
    corpus = load(cuad_zip, tmp_path)
    # 450 txt files, one of which is a byte-identical copy ('(1).txt'): 449 contracts, 2 counted rejects.
    assert corpus.stats["contracts"] == 449
    assert len(corpus.annotations) == 449 * 41
    assert corpus.stats["clause_pieces_unlocated"] == 0
    reasons = sorted(r["reason"] for r in corpus.rejects)
    assert len(reasons) == 2
    assert reasons[0].startswith("'ADUROBIOTECH") and "is a duplicate of" in reasons[0]
    assert reasons[1].startswith("duplicate contract: same text as")
    ids = [c["contract_id"] for c in corpus.contracts]
    assert len(ids) == len(set(ids))
    eval_share = sum(c["split"] == "eval" for c in corpus.contracts) / len(ids)
    assert 0.12 < eval_share < 0.28
    located = [a for a in corpus.annotations if a["answer_starts"]]
    contract = {c["contract_id"]: c["text"] for c in corpus.contracts}
    a = located[0]
    piece = contract[a["contract_id"]][a["answer_starts"][0] : a["answer_ends"][0]]
    assert " ".join(piece.split()).lower() == " ".join(a["answer_texts"][0].split()).lower()


def test_split_is_deterministic_and_per_contract():
    assert split_for("abc", 0.2) == split_for("abc", 0.2)
    assert {split_for(hashlib.md5(str(i).encode()).hexdigest(), 0.0) for i in range(50)} == {"train"}
    assert {split_for(hashlib.md5(str(i).encode()).hexdigest(), 1.0) for i in range(50)} == {"eval"}


def test_corrupt_archive_names_file_and_fix(tmp_path):
    bad = tmp_path / "CUAD_v1.zip"
    bad.write_bytes(b"this is not a zip file at all")
    with pytest.raises(CuadSourceError, match=r"CUAD_v1.zip is not a readable zip archive.*SELFINSTRUCT_CUAD_URI"):
        open_cuad_source(str(bad), tmp_path)


def test_truncated_archive(cuad_zip, tmp_path):
    cut = tmp_path / "CUAD_v1.zip"
    cut.write_bytes(cuad_zip.read_bytes()[:3_000_000])
    with pytest.raises(CuadSourceError, match="truncated or corrupt"):
        load(cut, tmp_path)


def test_missing_master_clauses(cuad_members, tmp_path):
    texts = dict(list(cuad_members["texts"].items())[:2])
    path = write_archive(tmp_path / "a.zip", cuad_members["header"], [], texts, csv_name="")
    with pytest.raises(CuadSourceError, match="neither master_clauses.csv nor CUAD_v1.json"):
        load(path, tmp_path)


def test_row_whose_file_is_missing_is_a_counted_reject(cuad_members, tmp_path):
    rows = cuad_members["rows"][:3]
    texts = {
        txt_name_for(r[0], cuad_members["texts"]): cuad_members["texts"][txt_name_for(r[0], cuad_members["texts"])]
        for r in rows[:2]
    }
    corpus = load(write_archive(tmp_path / "a.zip", cuad_members["header"], rows, texts), tmp_path)
    assert corpus.stats["contracts"] == 2
    [rej] = corpus.rejects
    assert rej["row"] == 4 and "no full_contract_txt file matches" in rej["reason"] and rows[2][0] in rej["reason"]


def test_non_utf8_is_repaired_and_recorded(cuad_members, tmp_path):
    row = cuad_members["rows"][0]
    name = txt_name_for(row[0], cuad_members["texts"])
    data = cuad_members["texts"][name] + "\nSigned in Z\u00fcrich \u2013 end".encode("cp1252")
    corpus = load(write_archive(tmp_path / "a.zip", cuad_members["header"], [row], {name: data}), tmp_path)
    [rej] = corpus.rejects
    assert rej["action"] == "repaired" and "not valid UTF-8" in rej["reason"] and rej["source"] == name
    assert corpus.contracts[0]["text"].endswith("Signed in Z\u00fcrich \u2013 end")


def test_mac_resource_forks_are_not_contracts(cuad_members, tmp_path):
    row = cuad_members["rows"][0]
    name = txt_name_for(row[0], cuad_members["texts"])
    fork = f"__MACOSX/{ROOT}/full_contract_txt/._" + name.rsplit("/", 1)[1]
    corpus = load(
        write_archive(
            tmp_path / "a.zip",
            cuad_members["header"],
            [row],
            {name: cuad_members["texts"][name], fork: b"\x00\x05\x16\x07 Mac OS X"},
        ),
        tmp_path,
    )
    assert corpus.stats["contracts"] == 1 and corpus.rejects == []


def test_empty_and_duplicate_contracts_are_counted(cuad_members, tmp_path):
    rows = cuad_members["rows"][:2]
    names = [txt_name_for(r[0], cuad_members["texts"]) for r in rows]
    texts = {
        names[0]: cuad_members["texts"][names[0]],
        names[1]: b"  \n\n ",
        f"{ROOT}/full_contract_txt/Copy of first.txt": cuad_members["texts"][names[0]],
    }
    corpus = load(write_archive(tmp_path / "a.zip", cuad_members["header"], rows, texts), tmp_path)
    reasons = sorted(r["reason"] for r in corpus.rejects)
    assert corpus.stats["contracts"] == 1
    assert any(r.startswith("duplicate contract") for r in reasons)
    assert any(r == "empty contract text" for r in reasons)
    assert any("no full_contract_txt file matches" in r for r in reasons)  # the empty one's CSV row


def test_unreadable_csv_cell_is_rejected_not_dropped(cuad_members, tmp_path):
    row = list(cuad_members["rows"][0])
    row[1] = "['unterminated"
    name = txt_name_for(row[0], cuad_members["texts"])
    corpus = load(
        write_archive(tmp_path / "a.zip", cuad_members["header"], [row], {name: cuad_members["texts"][name]}), tmp_path
    )
    assert [r["row"] for r in corpus.rejects] == [2]
    assert "Document Name" in corpus.rejects[0]["reason"]
    assert len(corpus.annotations) == 40


@pytest.mark.parametrize(
    "uri,match", [("http://127.0.0.1:9/CUAD_v1.zip", "unreachable"), ("/nonexistent/CUAD_v1.zip", "does not exist")]
)
def test_unreachable_or_missing_uri(uri, match, tmp_path):
    with pytest.raises(CuadSourceError, match=match):
        open_cuad_source(uri, tmp_path)


def test_extracted_folder_is_accepted(cuad_members, tmp_path):
    import zipfile

    path = subset_archive(cuad_members, tmp_path / "a.zip", 3)
    zipfile.ZipFile(path).extractall(tmp_path / "x")
    corpus = load(tmp_path / "x", tmp_path)
    assert corpus.stats["contracts"] == 3 and len(corpus.annotations) == 3 * 41


def test_squad_form_json_is_accepted(cuad_members, tmp_path):
    import json
    import zipfile

    context = "This Agreement is governed by the laws of the State of New York. Other terms follow."
    data = {
        "version": "aok_v1.0",
        "data": [
            {
                "title": "Acme_Supply Agreement",
                "paragraphs": [
                    {
                        "context": context,
                        "qas": [
                            {
                                "id": "Acme_Supply Agreement__Governing Law",
                                "question": "...",
                                "is_impossible": False,
                                "answers": [
                                    {"text": "governed by the laws of the State of New York", "answer_start": 18}
                                ],
                            },
                            {
                                "id": "Acme_Supply Agreement__Non-Compete",
                                "question": "...",
                                "is_impossible": True,
                                "answers": [],
                            },
                        ],
                    }
                ],
            }
        ],
    }
    path = tmp_path / "squad.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{ROOT}/CUAD_v1.json", json.dumps(data))
        zf.writestr(f"{ROOT}/CUAD_v1_README.txt", cuad_members["readme"])
    corpus = load(path, tmp_path)
    assert corpus.stats["contracts"] == 1
    law = next(a for a in corpus.annotations if a["category"] == "Governing Law")
    assert context[law["answer_starts"][0] : law["answer_ends"][0]] == "governed by the laws of the State of New York"
    assert law["question"] == "Which state/country's law governs the interpretation of the contract?"
    assert next(a for a in corpus.annotations if a["category"] == "Non-Compete")["is_impossible"]


@pytest.mark.parametrize("cut", [3, 84, 90])
def test_row_with_wrong_cell_count_is_rejected_whole(cuad_members, tmp_path, cut):
    header = cuad_members["header"]
    good, short = cuad_members["rows"][0], list(cuad_members["rows"][1])
    short = short[:cut] if cut < len(header) else short + ["[]"] * (cut - len(header))
    texts = {
        txt_name_for(r[0], cuad_members["texts"]): cuad_members["texts"][txt_name_for(r[0], cuad_members["texts"])]
        for r in (good, short)
    }
    corpus = load(write_archive(tmp_path / "a.zip", header, [good, short], texts), tmp_path)
    [rej] = corpus.rejects
    assert rej["row"] == 3 and rej["source"].endswith("master_clauses.csv") and rej["action"] == "skipped"
    assert f"row has {cut} of {len(header)} columns" in rej["reason"]
    # the short row's contract keeps its text but gets no made-up "no clause" labels
    assert len(corpus.annotations) == 41
    assert corpus.stats["contracts_without_annotations"] == 1


@pytest.mark.parametrize(
    "field,value,match",
    [
        ("flags", 1, "encrypted"),  # a password-protected archive
        ("method", 99, "compression method"),  # a compression method zipfile does not know
    ],
)
def test_encrypted_or_unknown_compression_archive_is_a_cuad_source_error(cuad_members, tmp_path, field, value, match):
    import struct

    path = subset_archive(cuad_members, tmp_path / "a.zip", 1)
    raw = bytearray(path.read_bytes())
    at = raw.find(b"PK\x01\x02") + (8 if field == "flags" else 10)  # first central-directory entry
    raw[at : at + 2] = struct.pack(
        "<H", struct.unpack("<H", raw[at : at + 2])[0] | value if field == "flags" else value
    )
    path.write_bytes(bytes(raw))
    with pytest.raises(CuadSourceError, match=rf"a.zip.*{match}.*SELFINSTRUCT_CUAD_URI"):
        load(path, tmp_path)


def test_corrupt_member_message_keeps_the_url_and_variable_name(cuad_members, tmp_path):
    path = subset_archive(cuad_members, tmp_path / "a.zip", 1)
    raw = bytearray(path.read_bytes())
    for header, crc_at in ((b"PK\x03\x04", 14), (b"PK\x01\x02", 16)):  # the first member's CRC, in both headers
        raw[raw.find(header) + crc_at] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(CuadSourceError) as err:
        load(path, tmp_path)
    assert "SELFINSTRUCT_CUAD_URI" in str(err.value) and "CUAD_v1.zip" in str(err.value)


def test_a_csv_missing_cuads_category_columns_fails_naming_them(cuad_members, tmp_path):
    name = txt_name_for(cuad_members["rows"][0][0], cuad_members["texts"])
    header, row = cuad_members["header"][:5], cuad_members["rows"][0][:5]  # Filename, 2 categories, 2 answers
    path = write_archive(tmp_path / "a.zip", header, [row], {name: cuad_members["texts"][name]})
    with pytest.raises(CuadSourceError) as failed:
        load(path, tmp_path)
    message = str(failed.value)
    assert "master_clauses.csv lacks 39 of CUAD's 41 category columns" in message
    assert "'Agreement Date'" in message and "'Third Party Beneficiary'" in message
    assert "'Parties'" not in message and "SELFINSTRUCT_CUAD_URI" in message


def test_a_renamed_category_column_is_named_missing_and_unknown(cuad_members, tmp_path):
    name = txt_name_for(cuad_members["rows"][0][0], cuad_members["texts"])
    header = ["Party" if h == "Parties" else h for h in cuad_members["header"]]
    path = write_archive(tmp_path / "a.zip", header, [cuad_members["rows"][0]], {name: cuad_members["texts"][name]})
    with pytest.raises(CuadSourceError, match=r"lacks 1 of CUAD's 41 category columns \('Parties'\).*'Party'"):
        load(path, tmp_path)
