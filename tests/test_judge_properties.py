"""Properties of the judge reply parsers, checked with hypothesis on arbitrary and adversarial replies.

    .venv/bin/python -m pytest -q tests/test_judge_properties.py

Whatever a judge LM returns: no exception escapes, the verdict is a score in [0, 1] or missing with a
reason, and a reply made only of text copied from its own prompt (instructions, hint, inputs, DSPy's
format) is never scored.
"""

import math
import re
from types import SimpleNamespace as NS

import dspy
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from selfinstruct.judging import judges
from selfinstruct.judging.judges import JudgeVerdict, judge_factuality, judge_retrieval, parse_score, parse_yes_no

FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text a judge reply is made of: words, numbers in every form the parser reads, DSPy markers, yes/no, noise.
PIECES = st.sampled_from(
    [
        "score",
        "Score:",
        "rating",
        "is",
        "of",
        "=",
        "yes",
        "no",
        "true",
        "false",
        "Yes.",
        "NO",
        "0",
        "1",
        "0.5",
        ".5",
        "-0.2",
        "1.7",
        "4/5",
        "3/0",
        "80%",
        "7 out of 10",
        "1e400",
        "9" * 400,
        "nan",
        "inf",
        "/",
        "%",
        "\n",
        "  ",
        "[[ ## score ## ]]",
        "[[ ## critique ## ]]",
        "[[ ## retrieved ## ]]",
        "[[ ## completed ## ]]",
        "[[",
        "##",
        "The answer has no errors",
        "Score 1 for the same facts",
        "Reply with one word: yes or no.",
    ]
)
REPLIES = st.one_of(st.text(max_size=300), st.lists(st.one_of(PIECES, st.text(max_size=12)), max_size=30).map(" ".join))
INPUTS = st.text(max_size=120)


def assert_well_formed(v: JudgeVerdict, values: set[float] | None = None) -> None:
    assert isinstance(v, JudgeVerdict)
    if v.score is None:
        assert isinstance(v.missing_reason, str) and v.missing_reason.strip() and not v.flagged
    else:
        assert isinstance(v.score, float) and math.isfinite(v.score) and 0.0 <= v.score <= 1.0
        assert v.missing_reason is None
        assert values is None or v.score in values
    assert isinstance(v.critique, str)


class TextLM(dspy.BaseLM):
    """Replies `reply(prompt_text)` to every call, whatever DSPy asked for."""

    def __init__(self, reply):
        super().__init__(model="text-fake", model_type="chat", cache=False)
        self.reply, self.calls = reply, 0

    def forward(self, prompt=None, messages=None, **kwargs):
        self.calls += 1
        sent = prompt if prompt is not None else "\n\n".join(m["content"] for m in messages)
        msg = NS(content=self.reply(sent), role="assistant", tool_calls=None)
        return NS(choices=[NS(message=msg, finish_reason="stop", index=0)], usage={}, model=self.model)


def run(kind: str, lm: dspy.BaseLM, a: str, b: str, c: str) -> JudgeVerdict:
    return judge_factuality(lm, a, b, c) if kind == "factuality" else judge_retrieval(lm, a, c, b)


@FAST
@given(REPLIES)
def test_parse_score_never_raises_and_stays_in_range(raw):
    assert_well_formed(parse_score(raw))


@FAST
@given(REPLIES)
def test_parse_yes_no_gives_one_zero_or_missing(raw):
    assert_well_formed(parse_yes_no(raw), values={0.0, 1.0})


@FAST
@given(kind=st.sampled_from(["factuality", "retrieval"]), reply=REPLIES, a=INPUTS, b=INPUTS, c=INPUTS)
def test_the_full_judge_path_never_raises_on_any_reply(kind, reply, a, b, c):
    v = run(kind, TextLM(lambda sent: reply), a, b, c)
    assert_well_formed(v, values={0.0, 1.0} if kind == "retrieval" else None)
    assert v.via in {"adapter", "raw_reply", "plain_prompt"}


def _windows(text: str, picks: list[tuple[float, int]]) -> list[str]:
    """Runs of at least ECHO_WORDS whole words of `text`, chosen by (start fraction, extra words)."""
    spans = [m.span() for m in judges._TOKEN.finditer(text)]
    n = judges.ECHO_WORDS
    if len(spans) < n:
        return []
    out = []
    for frac, extra in picks:
        start = int(frac * (len(spans) - n))
        end = min(len(spans) - 1, start + n - 1 + extra)
        out.append(text[spans[start][0] : spans[end][1]])
    return out


PICKS = st.lists(st.tuples(st.floats(0, 1), st.integers(0, 40)), min_size=1, max_size=6)


@FAST
@given(
    kind=st.sampled_from(["factuality", "retrieval"]),
    picks=PICKS,
    seps=st.sampled_from([" ", "\n", "\n\n"]),
    hint_too=st.booleans(),
    a=INPUTS,
    b=INPUTS,
    c=INPUTS,
)
def test_a_reply_made_of_prompt_text_is_never_scored(kind, picks, seps, hint_too, a, b, c):
    # Copies of what the LM was sent (DSPy's messages, then the plain prompt), in any order, and, on the first
    # call, of the instruction and hint it has not been sent yet: none of it is the judge's own verdict.
    sig, field = (judges.FactualityJudge, "score") if kind == "factuality" else (judges.RetrievalJudge, "retrieved")
    extra = f"{sig.instructions}\n\n{judges._HINTS[field]}" if hint_too else ""

    def echo(sent: str) -> str:
        parts = _windows(sent, picks) + _windows(extra, picks[::-1])
        return seps.join(parts[::-1] if len(picks) % 2 else parts)

    v = run(kind, TextLM(echo), a, b, c)
    assert v.score is None and v.missing_reason, v


@pytest.mark.parametrize("kind", ["factuality", "retrieval"])
def test_property_helpers_can_fail(kind):
    # The echo generator really produces scorable text when the cut is switched off (the properties bite).
    sent = judges._plain_prompt(
        judges.FactualityJudge if kind == "factuality" else judges.RetrievalJudge,
        {"question": "q", "gold_answer": "g", "predicted_answer": "p", "context": "c"},
        "score" if kind == "factuality" else "retrieved",
    )
    reply = " ".join(_windows(sent, [(0.0, 400)]))
    parse = parse_score if kind == "factuality" else parse_yes_no
    assert parse(reply).score is not None, "the whole prompt, read naively, yields a score"
    assert parse(judges._cut_echo(reply, sent)[0]).score is None
    assert re.search(r"\d|yes|no", reply, re.I)
