"""A toy contract for the model tests: six clauses, four copies of it (three train-split, one eval-split), a
question on four of the clauses per copy, overlapping chunks, and a reviewer's correction on a train and an eval copy."""

SENTENCES = [
    "This Agreement shall be governed by the laws of the State of New York.",
    "Payment is due in thirty days after the invoice date.",
    "Either party may terminate this Agreement upon ninety days written notice.",
    "Each party shall keep the other party's information confidential.",
    "Notices shall be sent by registered mail to the addresses above.",
    "The Distributor shall not sell competing products in the Territory.",
]
TEXT = " ".join(SENTENCES * 2)


def _chunks(cid, size=80):
    return [
        {
            "chunk_id": f"{cid}:{i}",
            "contract_id": cid,
            "start": i,
            "end": min(len(TEXT), i + size),
            "text": TEXT[i : i + size],
        }
        for i in range(0, len(TEXT), size // 2)
    ]


def _ann(cid, sentence, question):
    start = TEXT.index(sentence)
    return {
        "contract_id": cid,
        "category": question[:12],
        "question": question,
        "is_impossible": False,
        "answer_texts": [sentence],
        "answer_starts": [start],
        "answer_ends": [start + len(sentence)],
    }


CONTRACTS = [
    {"contract_id": c, "split": s, "text": TEXT}
    for c, s in (("t1", "train"), ("t2", "train"), ("t3", "train"), ("e1", "eval"))
]
QUESTIONS = [
    (SENTENCES[0], "Which state's law governs the contract?"),
    (SENTENCES[2], "Can a party terminate?"),
    (SENTENCES[1], "When is payment due?"),
    (SENTENCES[5], "Is there a non-compete?"),
]
ANNOTATIONS = [_ann(c["contract_id"], s, q) for c in CONTRACTS for s, q in QUESTIONS]
# human_feedback rows: a reviewer's correction (as serving.ratings writes it) on a train and on an eval contract.
HUMAN_ROWS = [
    {
        "event_id": f"{i:016x}-correct-0000000{i}",
        "question": "Which law applies?",
        "answer": SENTENCES[0],
        "contract_id": cid,
        "score": 1.0,
        "comment": f"reviewer: ana; request {i:016x} answered by a1; correction of the served answer: {SENTENCES[3]}",
        "source": "human",
        "file": "review.jsonl",
        "line": i,
        "split": split,
    }
    for i, (cid, split) in enumerate((("t1", "train"), ("e1", "eval")), 1)
]
