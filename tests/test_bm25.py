"""The one BM25 set-up (selfinstruct.core.bm25): the tokens, rankings and scores of bm25s with English stop words."""

import bm25s
import pytest

from selfinstruct.core.bm25 import bm25_index, bm25_scores, bm25_top

TEXTS = [
    "The licensee shall pay royalties quarterly.",
    "This Agreement is governed by the laws of the State of New York.",
    "Either party may terminate this Agreement on ninety days notice.",
    "Governing law: Delaware. The laws of Delaware govern.",
]


def _by_hand(texts):
    index = bm25s.BM25()
    index.index(bm25s.tokenize(texts, stopwords="en", show_progress=False), show_progress=False)
    return index


@pytest.mark.parametrize("query", ["Which law governs the Agreement?", "royalties", "notice to terminate"])
def test_rankings_and_scores_are_bm25s_with_english_stop_words(query):
    ours, theirs = bm25_index(TEXTS), _by_hand(TEXTS)
    ids, _ = theirs.retrieve(bm25s.tokenize([query], stopwords="en", show_progress=False), k=4, show_progress=False)
    assert bm25_top(ours, query, 4) == [int(i) for i in ids[0]]
    tokens = bm25s.tokenize([query], stopwords="en", return_ids=False, show_progress=False)[0]
    assert bm25_scores(ours, query) == [float(x) for x in theirs.get_scores(tokens)]


def test_top_k_ranks_the_keyword_match_first():
    index = bm25_index(TEXTS)
    assert bm25_top(index, "governing law Delaware", 2)[0] == 3
    assert len(bm25_top(index, "royalties", 1)) == 1
    assert bm25_scores(index, "royalties")[1:] == [0.0, 0.0, 0.0]  # only the first text holds the word


def test_a_question_of_stop_words_only_scores_every_text_zero_instead_of_failing():
    from selfinstruct.answering import bm25_answer

    index = bm25_index(["The law of New York applies.", "Notices go by registered mail."])
    assert bm25_scores(index, "the of and") == [0.0, 0.0]
    assert not bm25_answer("the of and", ["The law of New York applies to all of it."]).has_clause
