"""Chunk windows: coverage, overlap, size bounds and stable content-addressed ids."""

import pytest

from selfinstruct.corpus.chunking import chunk_contracts, chunk_spans

TEXT = ("The Supplier shall deliver the Products to the Distributor within thirty days. " * 40).strip()


@pytest.mark.parametrize("size,overlap", [(100, 0), (200, 50), (500, 100), (5000, 30)])
def test_windows_cover_text_and_respect_size(size, overlap):
    spans = list(chunk_spans(TEXT, size, overlap))
    covered = set()
    for s, e in spans:
        assert 0 < e - s <= size
        covered.update(range(s, e))
    assert covered == set(range(len(TEXT)))
    assert spans[-1][1] == len(TEXT)


def test_neighbours_overlap_and_cut_on_whitespace():
    spans = list(chunk_spans(TEXT, 200, 50))
    for (_, e1), (s2, _) in zip(spans, spans[1:]):
        assert s2 < e1, "neighbouring windows must share text"
        assert TEXT[s2 - 1] == " ", "a window starts at a word"


@pytest.mark.parametrize("size,overlap", [(0, 0), (100, 100), (100, -1)])
def test_bad_sizes_are_refused(size, overlap):
    with pytest.raises(ValueError, match="chunk size"):
        list(chunk_spans(TEXT, size, overlap))


def test_ids_are_stable_unique_and_depend_on_content():
    contracts = [{"contract_id": "a", "text": TEXT}, {"contract_id": "b", "text": TEXT}]
    first = chunk_contracts(contracts, 300, 60)
    again = chunk_contracts(contracts, 300, 60)
    assert [c["chunk_id"] for c in first] == [c["chunk_id"] for c in again]
    assert len({c["chunk_id"] for c in first}) == len(first)
    changed = chunk_contracts([{"contract_id": "a", "text": TEXT.replace("thirty", "sixty", 1)}], 300, 60)
    assert changed[0]["chunk_id"] != first[0]["chunk_id"]
    assert (
        changed[-1]["chunk_id"] != first[len(changed) - 1]["chunk_id"]
        or changed[-1]["text"] == first[len(changed) - 1]["text"]
    )


def test_whitespace_only_contract_gives_no_chunks():
    assert chunk_contracts([{"contract_id": "x", "text": "   \n  "}], 100, 10) == []
