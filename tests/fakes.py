"""A fake DSPy LM that answers any signature in ChatAdapter format, and an LLM resource serving it."""

import re
from types import SimpleNamespace as NS

import dspy

from resources.llm import LLMResource


class FieldFakeLM(dspy.BaseLM):
    """Fills each output field DSPy asks for; answers copy words from the context so they are grounded."""

    def __init__(self, score: str = "0.8"):
        super().__init__(model="field-fake", model_type="chat", cache=False)
        self.score = score
        self.calls = 0

    def forward(self, prompt=None, messages=None, **kwargs):
        self.calls += 1
        system = messages[0]["content"] if messages else ""
        user = messages[-1]["content"] if messages else prompt or ""
        outputs = system.split("Your output fields are:")[-1].split("All interactions")[0]
        fields = re.findall(r"`(\w+)`", outputs)
        ctx = re.search(r"\[\[ ## context ## \]\]\s*(.+?)(?:\[\[ ## |\Z)", user, re.S)
        words = (ctx.group(1).split() if ctx else ["Not", "stated"])[:6]
        values = {
            "answer": " ".join(words),
            "question": "What does this clause of the contract say?",
            "score": self.score,
            "critique": "close to the gold answer",
            "retrieved": "yes",
        }
        text = "".join(f"[[ ## {f} ## ]]\n{values.get(f, 'x')}\n\n" for f in fields) + "[[ ## completed ## ]]"
        msg = NS(content=text, role="assistant", tool_calls=None)
        return NS(choices=[NS(message=msg, finish_reason="stop", index=0)], usage={}, model=self.model)


_FAKE = FieldFakeLM()


class FakeLLMResource(LLMResource):
    """Every role gets the same FieldFakeLM."""

    def lm(self, role: str) -> dspy.BaseLM:
        self.spec(role)
        return _FAKE
