"""Clause location under whitespace differences, and questions from category descriptions."""

import pytest

from selfinstruct.corpus.categories import descriptions_from_readme, match_descriptions, question_for
from selfinstruct.corpus.cuad import fold_name
from selfinstruct.corpus.spans import NormalizedText, split_omitted


@pytest.mark.parametrize("needle", ["shall expire two years", "shall   expire\ntwo years", "SHALL EXPIRE two YEARS"])
def test_locate_survives_whitespace_and_case(needle):
    text = "This Agreement\n  shall expire\r\n\ttwo years after the Effective Date."
    start, end = NormalizedText.of(text).locate(needle)
    assert " ".join(text[start:end].split()).lower() == "shall expire two years"


def test_locate_returns_none_for_absent_clause():
    assert NormalizedText.of("alpha beta gamma").locate("delta") is None
    assert NormalizedText.of("alpha beta").locate("   ") is None


def test_split_omitted_gives_each_piece():
    assert split_omitted("first part <omitted> second part<omitted>") == ["first part", "second part"]


@pytest.mark.parametrize(
    "csv_name,txt_name",
    [
        ("Foo & Bar Inc_Agreement.pdf", "Foo _ Bar Inc_Agreement.txt"),
        ("O'Neil Corp-EX-10.PDF", "O_Neil Corp-EX-10.txt"),
        ("Trailing-.pdf", "Trailing.txt"),
        ("KALLO_AGREEMENT.PDF'", "KALLO_AGREEMENT.txt"),
        ("LECLANCH\u00c9 SA.pdf", "LECLANCHE\u0301 SA.txt"),
    ],
)
def test_fold_name_pairs_cuad_quirks(csv_name, txt_name):
    assert fold_name(csv_name) == fold_name(txt_name)


def test_fold_name_keeps_distinct_contracts_apart():
    assert fold_name("Alpha Agreement.pdf") != fold_name("Alpha Agreement 2.pdf")


@pytest.mark.parametrize(
    "description,question",
    [
        ("The name of the contract", "What is the name of the contract?"),
        (
            "On what date will the contract's initial term expire?",
            "On what date will the contract's initial term expire?",
        ),
        (
            "Is a party’s liability uncapped upon the breach? This also includes more.",
            "Is a party’s liability uncapped upon the breach?",
        ),
        (
            "This category includes the exceptions or carveouts to Non-Compete",
            "What are the exceptions or carveouts to Non-Compete?",
        ),
        (None, "What does the contract say about governing law?"),
    ],
)
def test_question_for(description, question):
    assert question_for("Governing Law", description) == question


def test_readme_descriptions_match_csv_categories(cuad_members):
    descriptions = descriptions_from_readme(cuad_members["readme"].decode("utf-8"))
    assert len(descriptions) == 41
    cats = [h for h in cuad_members["header"][1:] if "Answer" not in h]
    matched = match_descriptions(cats, descriptions, fold_name)
    assert all(matched.values()), [c for c, d in matched.items() if not d]
    assert matched["Price Restrictions"].startswith(
        "Is there a restriction on the ability of a party to raise or reduce prices"
    )
