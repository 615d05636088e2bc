"""The quoting prompt: the model is asked to copy a clause word for word, or to say there is none.

    messages = quote_messages("Which law governs the contract?", ["excerpt 1", "excerpt 2"])

Dagster-free. The LM scorer asks how likely each candidate span is as the assistant's reply to exactly these
messages, so training rows (SFT/DPO/ORPO) should use the same messages and quote-or-NO_CLAUSE targets.
"""

from __future__ import annotations

from collections.abc import Sequence

NO_CLAUSE = "No such clause."
QUOTE_INSTRUCTION = (
    "You answer questions about a contract using only the excerpts given. If the excerpts contain a clause "
    "that answers the question, copy that clause word for word (one to three sentences). If they do not, "
    f"reply exactly '{NO_CLAUSE}'"
)


def quote_messages(question: str, passages: Sequence[str]) -> list[dict]:
    excerpts = "\n\n---\n\n".join(p.strip() for p in passages if p.strip()) or "(no excerpt found)"
    return [
        {"role": "system", "content": QUOTE_INSTRUCTION},
        {"role": "user", "content": f"Contract excerpts:\n{excerpts}\n\nQuestion: {question}"},
    ]
