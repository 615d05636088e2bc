"""Pick the answer a local HF model (base, or base + peft adapter) finds most likely among the candidate spans.

    scorer = SpanScorer(model, tok)          # e.g. tok, model, _ = LocalLM(model_dir, adapter).load()
    answer = scorer.answer(question, top_chunks, margin=0.0)

Dagster-free. A span's score is its log-probability as the assistant's reply to `quote_messages`, ending with
the end-of-turn token (so a window that stops mid-clause is penalised), divided by n_tokens ** alpha.
alpha=1 is the per-token mean (the default: a sum would always prefer the shortest span, since every token
costs probability). benchmarks/bench_answering.py measured alpha 0 to 1 on held-out CUAD: the base model's
choice is near chance at every alpha, so the base model gains its accuracy from training (SFT on quotes), not
from alpha. "No such clause." is scored the same way
and wins unless the best span beats it by `margin`, so the model can say there is none.

`lead=L` scores a reply by the log-probability of its first L tokens instead (ties, as between windows that
start alike, broken by the whole reply's mean): after a model has learnt to copy, every shown window is easy to
continue, and what it learnt about *which* window to quote (or to say none) sits in the first tokens, diluted
~60-fold by the mean.

Cost: the shared prompt (~800 tokens for three 1,000-char chunks) runs once and its KV cache is repeated for
each right-padded batch of candidates; windows that extend one another (same first sentence) share one pass.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from selfinstruct.answering.answer import Answer, Span
from selfinstruct.answering.candidates import Passage, candidate_spans
from selfinstruct.answering.prompt import NO_CLAUSE, quote_messages
from selfinstruct.answering.sharing import cache_kwarg, cache_of, keep_scores, maximal

TIE = 1e-3  # weight of the whole reply's mean beside its lead: only breaks ties


def normalised(logprob: float, n_tokens: int, alpha: float) -> float:
    return logprob / max(1, n_tokens) ** alpha


@dataclass(frozen=True)
class ReplyLogprob:
    """One reply's log-probs: `prefix[i]` is the sum over its first i tokens (i = 0..n-1, the end token not
    counted); `total` counts every token and the end token."""

    prefix: tuple[float, ...]
    total: float

    @property
    def n(self) -> int:
        """Tokens with the end token."""
        return len(self.prefix)

    def lead(self, k: int) -> float:
        return self.prefix[min(k, len(self.prefix) - 1)]


@dataclass
class SpanScorer:
    model: Any  # a transformers causal LM (or a peft model over one), in eval mode
    tok: Any  # its tokenizer, with a chat template
    batch_size: int = 8  # candidates per forward pass; each holds a copy of the prompt's KV cache
    alpha: float = 1.0  # length normalisation: score = log p / n_tokens ** alpha
    lead: int = 0  # > 0: score = log p of the first `lead` tokens (+ TIE x the mean); 0: the normalised whole

    def prompt_ids(self, messages: list[dict]) -> list[int]:
        text = self.tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return self.tok(text, add_special_tokens=False)["input_ids"]

    def end_id(self) -> int:
        return (
            self.tok.convert_tokens_to_ids("<|im_end|>")
            if "<|im_end|>" in self.tok.get_vocab()
            else self.tok.eos_token_id
        )

    def reply_ids(self, text: str) -> list[int]:
        return self.tok(text, add_special_tokens=False)["input_ids"] + [self.end_id()]

    def logprobs(self, messages: list[dict], replies: Sequence[str]) -> list[tuple[float, int]]:
        """(sum of token log-probs, n tokens incl. the end token) of each reply to `messages`."""
        return [(r.total, r.n) for r in self.reply_logprobs(messages, replies)]

    def values(self, scored: Sequence[ReplyLogprob]) -> list[float]:
        """Each reply's score under this scorer's rule (`alpha`, `lead`)."""
        if self.lead <= 0:
            return [normalised(r.total, r.n, self.alpha) for r in scored]
        return [r.lead(self.lead) + TIE * normalised(r.total, r.n, self.alpha) for r in scored]

    def reply_logprobs(self, messages: list[dict], replies: Sequence[str]) -> list[ReplyLogprob]:
        """Each reply's `ReplyLogprob` as the assistant's answer to `messages`.

        Exact and shared: the prompt runs once and its KV cache serves every batch; a reply whose tokens
        are a prefix of a longer reply's (a 1-sentence window of the 3-sentence window with the same start)
        is read off the longer one's pass, so only maximal token sequences are run, shortest first.
        """
        import torch

        model, end = self.model, self.end_id()
        prompt = self.prompt_ids(messages)
        bodies = [r[:-1] for r in (self.reply_ids(x) for x in replies)]
        runs = maximal(bodies)
        by_len = sorted((r for r in runs if r), key=len)  # similar lengths share a batch: less padding
        p = len(prompt)
        pad = self.tok.pad_token_id if self.tok.pad_token_id is not None else 0
        # run -> (cumulative log-prob of its first i tokens, log-prob of the end token after i tokens), i = 0..len
        kept: dict[tuple, tuple] = {}
        with torch.inference_mode():
            first = model(input_ids=torch.tensor([prompt], device=model.device), use_cache=True, logits_to_keep=1)
            first_lp = first.logits[0, -1:].float().log_softmax(-1)
            cache, cache_rows, kw = cache_of(first), 1, cache_kwarg(model)
            kept[()] = keep_scores(first_lp, (), end)
            for lo in range(0, len(by_len), self.batch_size):
                batch = by_len[lo : lo + self.batch_size]
                b, width = len(batch), max(len(c) for c in batch)
                # Right padding: pads come after every real token, so causal attention never lets one leak in.
                ids = torch.tensor([list(c) + [pad] * (width - len(c)) for c in batch], device=model.device)
                mask = torch.tensor([[1] * (p + len(c)) + [0] * (width - len(c)) for c in batch], device=model.device)
                if cache_rows == 1:
                    cache.batch_repeat_interleave(b)
                elif b < cache_rows:
                    cache.batch_select_indices(torch.arange(b, device=model.device))  # the last, smaller batch
                cache_rows = b
                pos = torch.arange(p, p + width, device=model.device).expand(b, width)
                logits = model(
                    input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True, **{kw: cache}
                ).logits
                cache.crop(-width)  # drop this batch's tokens; the prompt's rows serve the next batch
                for row, c in enumerate(batch):
                    kept[c] = keep_scores(torch.cat([first_lp, logits[row, : len(c)].float().log_softmax(-1)]), c, end)
        out = []
        for body in bodies:
            # The smallest run >= body in lexicographic order is one of its extensions (or itself).
            cum, end_lp = kept[runs[bisect.bisect_left(runs, tuple(body))]]
            prefix = tuple(cum[: len(body) + 1].tolist())  # one conversion, not one per token
            out.append(ReplyLogprob(prefix, float(cum[len(body)] + end_lp[len(body)])))
        return out

    def logprobs_naive(self, messages: list[dict], replies: Sequence[str]) -> list[tuple[float, int]]:
        """The reference `logprobs` checks against: one full forward pass per reply, no cache, no padding."""
        import torch

        prompt, out = self.prompt_ids(messages), []
        with torch.inference_mode():
            for r in replies:
                c = self.reply_ids(r)
                lp = self.model(input_ids=torch.tensor([prompt + c])).logits[0].float().log_softmax(-1)
                pos = torch.arange(len(prompt) - 1, len(prompt) + len(c) - 1)
                out.append((float(lp[pos, torch.tensor(c)].sum()), len(c)))
        return out

    def answer(
        self, question: str, passages: Sequence[Passage], margin: float = 0.0, spans: Sequence[Span] | None = None
    ) -> Answer:
        """The best span, unless "No such clause." scores within `margin` of it (then no clause).

        `Answer.score` is best span minus no-clause (normalised log-probs): a threshold calibrated on it
        replaces `margin` without rescoring.
        """
        spans = list(spans) if spans is not None else candidate_spans(passages)
        texts = [p if isinstance(p, str) else p["text"] for p in passages]
        scored = self.reply_logprobs(quote_messages(question, texts), [s.text for s in spans] + [NO_CLAUSE])
        detail = {"alpha": self.alpha} | ({"lead": self.lead} if self.lead > 0 else {})
        return pick_answer(spans, self.values(scored), margin, method="lm", **detail)


def pick_answer(spans: Sequence[Span], values: list[float], margin: float, **detail) -> Answer:
    """The best span unless "No such clause." (the last of `values`) comes within `margin` of it."""
    none = values[-1]
    detail = {**detail, "no_clause_score": none, "n_candidates": len(spans)}
    if not spans:
        return Answer.none(0.0, **detail)
    best = max(range(len(spans)), key=lambda i: values[i])
    gap = values[best] - none
    if gap <= margin:
        return Answer.none(gap, best_span=spans[best].text, **detail)
    return Answer.of(spans[best], gap, **detail)
