"""The review page: served answers from live traffic, most informative first, for experts to rate or correct.

    items = queue(recent_requests(queries_inbox, service.records), rated_requests(feedback_inbox),
                  judge=TrainedJudge(path), golds=golds_of, margin=0.0, n=20)
    html = render_page(items, contracts, service.passages, reviewer="ana")

Dagster-free. Informative first: with a trained judge (`answer_judge`) and the question's gold clauses (a CUAD
category question on a known contract), the answers whose judge score lies closest to the judge's calibrated
threshold; other answers this server gave by how close the scorer's own margin over "No such clause." came to
`margin`; the rest newest first. Then spread: each next item is the best-ranked one whose category and contract
have been picked least so far. The page is plain HTML with a small script; every action is keyboard-usable and
posts one feedback row (ratings.py).
"""

from __future__ import annotations

import html
import json
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence

from selfinstruct.answering import NO_CLAUSE

WINDOW = 700  # contract characters shown on either side of a quote


def recent_requests(queries, records: Mapping[str, dict] | None = None, max_lines: int = 5000) -> list[dict]:
    """Answered requests, newest last: the query inbox's lines written by `serve` (those with an `arm`), joined with
    this process's own records (which also know the quote's offsets and the scorer's margin)."""
    out: dict[str, dict] = {}
    lines: list[str] = []
    for f in reversed(queries.files()):  # newest files first, until enough lines are read
        try:
            lines[:0] = queries.read(f.name).decode("utf-8", "replace").splitlines()
        except OSError:
            continue
        if len(lines) >= max_lines:
            break
    for text in lines[-max_lines:]:
        try:
            row = json.loads(text)
        except ValueError:
            continue
        keys = ("query_id", "question", "contract_id", "answer", "arm")
        if isinstance(row, dict) and all(isinstance(row.get(k), str) for k in keys):
            out[row["query_id"]] = {
                "request_id": row["query_id"],
                "question": row["question"],
                "contract_id": row["contract_id"],
                "answer": row["answer"],
                "adapter_id": str(row.get("adapter", "")),
                "arm": row["arm"],
                "timestamp": str(row.get("timestamp", "")),
            }
    for rid, rec in list((records or {}).items()):
        out[rid] = {**out.get(rid, {}), **rec}
    return sorted(out.values(), key=lambda r: r.get("timestamp", ""))


def judge_scores(
    items: Sequence[dict], judge, golds: Callable[[str, str], list[str] | None] | None
) -> list[float | None]:
    """P(right) by the trained judge for items whose question has known gold clauses; None for the others."""
    if judge is None or golds is None:
        return [None] * len(items)
    from selfinstruct.judging.trained_judge import judge_rows

    known = [(i, g) for i, it in enumerate(items) if (g := golds(it["contract_id"], it["question"])) is not None]
    scores: list[float | None] = [None] * len(items)
    rows = [{"question": items[i]["question"], "answer": items[i]["answer"], "gold_answers": g} for i, g in known]
    for (i, _), s in zip(known, judge_rows(judge, rows) if rows else []):
        scores[i] = s
    return scores


def queue(
    requests: Sequence[dict],
    rated: Iterable[str] = (),
    judge=None,
    golds: Callable[[str, str], list[str] | None] | None = None,
    categories: Callable[[str], str | None] | None = None,
    margin: float = 0.0,
    n: int = 20,
) -> list[dict]:
    """Up to `n` unrated requests, most informative first, spread over categories and contracts."""
    rated = set(rated)
    todo = [dict(r) for r in requests if r["request_id"] not in rated]
    threshold = float(getattr(judge, "threshold", 0.5))
    for item, score in zip(todo, judge_scores(todo, judge, golds)):
        item["judge_score"] = score
        item["category"] = (categories(item["question"]) if categories else None) or ""
    newest = {id(it): -i for i, it in enumerate(reversed(todo))}

    def rank(it: dict) -> tuple:
        if it["judge_score"] is not None:
            return 0, abs(it["judge_score"] - threshold), newest[id(it)]
        if it.get("answer_score") is not None:  # an infinite margin (always / never quote) ranks by the gap alone
            gap = float(it["answer_score"])
            return 1, abs(gap - margin) if math.isfinite(margin) else abs(gap), newest[id(it)]
        return 2, 0.0, newest[id(it)]

    ranked = sorted(todo, key=rank)
    picked: list[dict] = []
    by_category: Counter[str] = Counter()
    by_contract: Counter[str] = Counter()
    while ranked and len(picked) < n:
        best = min(
            range(len(ranked)),
            key=lambda i: (by_category[ranked[i]["category"]] + by_contract[ranked[i]["contract_id"]], i),
        )
        item = ranked.pop(best)
        item["why"] = _why(rank(item), threshold, margin)
        by_category[item["category"]] += 1
        by_contract[item["contract_id"]] += 1
        picked.append(item)
    return picked


def _why(key: tuple, threshold: float, margin: float) -> str:
    tier, distance, _ = key
    if tier == 0:
        return f"judge score {distance:.2f} from its threshold {threshold:.2f}"
    if tier == 1:
        return f"the model's margin over 'No such clause.' is {distance:.2f} from its abstain margin {margin:g}"
    return "no judge score: newest first"


# ------------------------------------------------------------------------------------------------ the page


def segments(item: dict, contract_text: str, passages: Callable[[str, str], list[str]]) -> list[tuple[int, str]]:
    """(contract offset, text) pieces to show: the contract around the quote, or the retrieved passages when the
    answer is "No such clause." (or its quote cannot be found)."""
    start, end = item.get("start"), item.get("end")
    if item["answer"] != NO_CLAUSE and (start is None or contract_text[start:end] != item["answer"]):
        at = contract_text.find(item["answer"])
        start, end = (at, at + len(item["answer"])) if at >= 0 else (None, None)
    if start is not None and end is not None:
        lo, hi = max(0, start - WINDOW), min(len(contract_text), end + WINDOW)
        return [(lo, contract_text[lo:hi])]
    out = []
    for passage in passages(item["question"], item["contract_id"]):
        at = contract_text.find(passage)
        if at >= 0:
            out.append((at, passage))
    return out


def _passage_html(offset: int, text: str, start: int | None, end: int | None) -> str:
    if start is not None and end is not None and offset <= start and end <= offset + len(text):
        a, b = start - offset, end - offset
        body = f"{html.escape(text[:a])}<mark>{html.escape(text[a:b])}</mark>{html.escape(text[b:])}"
    else:
        body = html.escape(text)
    return f'<div class="passage" data-start="{offset}">{body}</div>'


def _card(item: dict, contract_text: str, passages) -> str:
    pieces = segments(item, contract_text, passages)
    start = end = None
    if item["answer"] != NO_CLAUSE:
        for offset, text in pieces:
            at = text.find(item["answer"])
            if at >= 0:
                start, end = offset + at, offset + at + len(item["answer"])
                break
    shown = "".join(_passage_html(o, t, start, end) for o, t in pieces) or '<p class="empty">(no passage found)</p>'
    judge = "" if item.get("judge_score") is None else f" · judge {item['judge_score']:.2f}"
    meta = (
        f"contract {html.escape(item['contract_id'])} · {html.escape(item.get('category') or 'no category')} · "
        f"adapter {html.escape(item.get('adapter_id', ''))} ({html.escape(item.get('arm', ''))}){judge}"
    )
    rid = html.escape(item["request_id"])
    return f"""<article class="card" data-request="{rid}" tabindex="-1" aria-label="answer to rate">
<h2>{html.escape(item["question"])}</h2>
<p class="meta">{meta} · <span class="why">{html.escape(item.get("why", ""))}</span></p>
<p class="answer"><strong>Served answer:</strong> {html.escape(item["answer"])}</p>
{shown}
<div class="actions">
<button type="button" data-action="right">Right <kbd>1</kbd></button>
<button type="button" data-action="wrong">Wrong <kbd>2</kbd></button>
<button type="button" data-action="no_clause">There is no such clause <kbd>3</kbd></button>
<button type="button" data-action="correct">Selected text is the right clause <kbd>c</kbd></button>
</div>
<p class="status" role="status" aria-live="polite"></p>
</article>"""


STYLE = """
body { font: 16px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 1rem auto; padding: 0 1rem; color: #111; }
.card { border: 1px solid #bbb; border-radius: 6px; padding: .5rem 1rem; margin: 1rem 0; }
.card.current { outline: 3px solid #1a5fb4; }
.card.done { opacity: .55; }
.card h2 { font-size: 1.1rem; margin: .3rem 0; }
.meta { color: #444; font-size: .85rem; margin: 0; }
.passage { white-space: pre-wrap; background: #f6f6f6; padding: .5rem; max-height: 18rem; overflow: auto;
  margin: .5rem 0; border-left: 3px solid #ccc; }
mark { background: #ffe066; }
button { font-size: .95rem; margin: .2rem .3rem .2rem 0; padding: .3rem .7rem; }
button:focus { outline: 3px solid #1a5fb4; }
kbd { border: 1px solid #999; border-radius: 3px; padding: 0 .25rem; font-size: .8rem; }
.status { min-height: 1.3rem; margin: .2rem 0; font-weight: 600; }
.status.error { color: #a51d2d; }
"""

SCRIPT = """
(() => {
  const cards = Array.from(document.querySelectorAll('.card'));
  let at = 0;
  function focusCard(i) {
    if (!cards.length) return;
    at = Math.max(0, Math.min(cards.length - 1, i));
    cards.forEach((c, j) => c.classList.toggle('current', j === at));
    cards[at].focus();
  }
  function selection(card) {
    const sel = window.getSelection();
    if (!sel || !sel.rangeCount || sel.isCollapsed) return null;
    const range = sel.getRangeAt(0);
    for (const passage of card.querySelectorAll('.passage')) {
      if (!passage.contains(range.startContainer) || !passage.contains(range.endContainer)) continue;
      const before = document.createRange();
      before.selectNodeContents(passage);
      before.setEnd(range.startContainer, range.startOffset);
      const start = Number(passage.dataset.start) + before.toString().length;
      const quote = range.toString();
      return {quote: quote, start: start, end: start + quote.length};
    }
    return null;
  }
  async function act(card, action) {
    const status = card.querySelector('.status');
    const body = {request_id: card.dataset.request, action: action};
    if (action === 'correct') {
      const picked = selection(card);
      if (!picked) { status.textContent = 'Select the right clause in the passage first.'; status.classList.add('error'); return; }
      Object.assign(body, picked);
    }
    const resp = await fetch('/review/rate', {method: 'POST', headers: {'Content-Type': 'application/json'},
                                              body: JSON.stringify(body), credentials: 'same-origin'});
    const data = await resp.json().catch(() => ({}));
    if (!resp.ok) {
      status.textContent = (data.error && data.error.message) || ('failed: HTTP ' + resp.status);
      status.classList.add('error');
      return;
    }
    status.classList.remove('error');
    status.textContent = 'Saved: ' + data.rows + ' feedback row(s) (' + action + ').';
    card.classList.add('done');
    focusCard(cards.indexOf(card) + 1);
  }
  cards.forEach((card, i) => {
    card.addEventListener('click', () => { if (at !== i) focusCard(i); });
    card.querySelectorAll('button[data-action]').forEach(b =>
      b.addEventListener('click', ev => { ev.stopPropagation(); at = i; act(card, b.dataset.action); }));
  });
  const keys = {'1': 'right', '2': 'wrong', '3': 'no_clause', 'c': 'correct'};
  document.addEventListener('keydown', ev => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey || !cards.length) return;
    if (ev.key === 'j') { focusCard(at + 1); ev.preventDefault(); }
    else if (ev.key === 'k') { focusCard(at - 1); ev.preventDefault(); }
    else if (keys[ev.key]) { act(cards[at], keys[ev.key]); ev.preventDefault(); }
  });
  focusCard(0);
})();
"""


def page(title: str, body: str, script: bool = False) -> str:
    js = f"<script>{SCRIPT}</script>" if script else ""
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
        f'content="width=device-width, initial-scale=1"><title>{html.escape(title)}</title><style>{STYLE}</style>'
        f"</head><body>{body}{js}</body></html>"
    )


def render_queue(items: Sequence[dict], contracts: Mapping[str, str], passages, reviewer: str) -> str:
    """The review page for `items` (queue()'s order)."""
    head = (
        f"<header><h1>Answers to review</h1><p>Signed in as <strong>{html.escape(reviewer)}</strong>. "
        "Keys: <kbd>j</kbd>/<kbd>k</kbd> next/previous, <kbd>1</kbd> right, <kbd>2</kbd> wrong, <kbd>3</kbd> no "
        "such clause, <kbd>c</kbd> the selected text is the right clause. Each action saves one feedback row."
        "</p></header>"
    )
    cards = "".join(_card(it, contracts[it["contract_id"]], passages) for it in items if it["contract_id"] in contracts)
    return page("Review answers", head + (cards or "<p>Nothing to review: every answered request is rated.</p>"), True)


def render_login(needs_token: bool, error: str = "") -> str:
    token = (
        '<p><label>Access token <input name="token" type="password" autocomplete="current-password" required>'
        "</label></p>"
        if needs_token
        else ""
    )
    note = f'<p class="status error" role="alert">{html.escape(error)}</p>' if error else ""
    body = (
        f"<h1>Sign in to review answers</h1>{note}"
        '<form method="post" action="/review/login"><p><label>Your name <input name="reviewer" required '
        f'maxlength="100" autofocus></label></p>{token}<p><button type="submit">Sign in</button></p></form>'
    )
    return page("Sign in", body)
