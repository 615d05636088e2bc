"""The synthetic quality report: rejects counted by reason, the duplicate rate, and answers located in the contract."""

import pytest
from toy_contracts import SENTENCES, TEXT, _ann

from selfinstruct.synthetic.quality import quality_report


def test_quality_report_counts_reasons_duplicates_and_located_answers():
    contracts = {"t1": {"contract_id": "t1", "text": TEXT}}
    kept = [
        {"contract_id": "t1", "question": "Which law governs?", "answer": SENTENCES[0]},
        {"contract_id": "t1", "question": "When is payment due?", "answer": SENTENCES[1]},
        {"contract_id": "t1", "question": "What?", "answer": "a paraphrase found nowhere"},
    ]
    rejected = [
        {"reason": "near-duplicate question (cosine 0.95)"},
        {"reason": "near-duplicate question (cosine 0.93)"},
        {"reason": "answer not grounded in context"},
    ]
    r = quality_report(kept + rejected, kept, rejected, contracts, [_ann("t1", SENTENCES[0], "Which law?")])
    assert r["rejected_by_reason"] == {"near-duplicate question": 2, "answer not grounded in context": 1}
    assert r["duplicate_rate"] == pytest.approx(2 / 6)
    assert r["located_share"] == pytest.approx(2 / 3) and r["cuad_clause_share"] == pytest.approx(1 / 3)
    assert quality_report([], [], [], contracts)["kept"] == 0
