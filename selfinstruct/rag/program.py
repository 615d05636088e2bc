"""DSPy RAG over one contract: retrieve k chunks of the question's contract, then answer briefly.

    with dspy.context(lm=lm):
        pred = ContractRAG(retrieve).forward(question="...", contract_id="...")

Dagster-free. The retriever is a plain callable, so the saved JSON holds only what DSPy learns
(instructions and demos) and loads against any index.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import dspy
from dspy.utils.exceptions import AdapterParseError

from selfinstruct.core.artifacts import publish_file

Retrieve = Callable[[str, str, int], list[str]]


class GenerateAnswer(dspy.Signature):
    """Answer the question about a contract using only the contract excerpts.
    Reply with a short answer copied from the excerpts, or 'Not stated' if they do not answer it."""

    context: str = dspy.InputField(desc="excerpts of the contract")
    question: str = dspy.InputField(desc="a question about the contract")
    answer: str = dspy.OutputField(desc="a short answer, usually a phrase quoted from the excerpts")


def _first_line_answer(raw: str) -> str:
    """What a small model that ignores the field markers meant as its answer."""
    text = re.sub(r"\[\[ ## \w+ ## \]\]", "\n", raw or "")
    text = re.sub(r"^\s*answer\s*:\s*", "", text.strip(), flags=re.I)
    return text.strip().split("\n\n")[0].strip()[:500]


class ContractRAG(dspy.Module):
    """Retrieve-then-answer; when the LM ignores DSPy's output format, its raw text is the answer."""

    def __init__(self, retrieve: Retrieve, k: int = 3, max_context_chars: int = 4000):
        super().__init__()
        self.retrieve = retrieve
        self.k = k
        self.max_context_chars = max_context_chars
        self.generate = dspy.Predict(GenerateAnswer)

    def context_for(self, question: str, contract_id: str) -> list[str]:
        passages = self.retrieve(question, contract_id, self.k)
        out: list[str] = []
        used = 0
        for p in passages:
            if used + len(p) > self.max_context_chars and out:
                break
            out.append(p)
            used += len(p)
        return out

    def forward(self, question: str, contract_id: str) -> dspy.Prediction:
        passages = self.context_for(question, contract_id)
        context = "\n\n".join(passages) if passages else "(no excerpt found)"
        try:
            answer = self.generate(context=context, question=question).answer
            parsed = True
        except AdapterParseError as exc:  # only a reply DSPy cannot read; a load failure must not become an answer
            answer = _first_line_answer(exc.lm_response or "")
            parsed = False
        return dspy.Prediction(answer=str(answer).strip(), context=passages, parsed=parsed)


def save_program(program: ContractRAG, path: Path) -> Path:
    """Write the program's learnable state as DSPy JSON, published by atomic rename."""
    return publish_file(lambda tmp: program.save(str(tmp)), path)


def load_program(path: Path, retrieve: Retrieve, k: int = 3) -> ContractRAG:
    program = ContractRAG(retrieve, k=k)
    program.load(str(path))
    return program
