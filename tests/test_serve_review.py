"""The review page in headless Chromium: sign in, rate by keyboard, correct a span, and see the feedback rows.

HF_HUB_OFFLINE=1 .venv/bin/python -m pytest -q tests/test_serve_review.py

Three requests are answered by the tiny model (bench_serve.TinyWorld) on a server that asks for a token; the test
signs in on /review/login, presses 1 (right) on the first answer, selects text of the second answer's passage and
presses c (correction), clicks "There is no such clause" on the third, and reads the feedback inbox with the
project's reader. Needs Chromium at /usr/bin/chromium (`make chromium`), as tests/test_ui.py does.
"""

import math
import sys
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_serve import QUESTIONS, TinyWorld, call  # noqa: E402

from selfinstruct.answering import NO_CLAUSE  # noqa: E402
from selfinstruct.intake.feedback import read_feedback_inbox  # noqa: E402
from selfinstruct.serving.app import serve_in_thread  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
TOKEN = "review-test-token-0123456789"
A = "aaaaaa000001"

SELECT_IN_PASSAGE = """(card) => {
  const passage = card.querySelector('.passage');
  const walker = document.createTreeWalker(passage, NodeFilter.SHOW_TEXT);
  let node, longest = null;
  while ((node = walker.nextNode())) if (!longest || node.length > longest.length) longest = node;
  const range = document.createRange();
  range.setStart(longest, 10);
  range.setEnd(longest, Math.min(longest.length, 130));
  const sel = window.getSelection();
  sel.removeAllRanges();
  sel.addRange(range);
  return range.toString();
}"""


@pytest.mark.slow
def test_review_page_rates_and_corrects_by_keyboard(tiny, tmp_path):
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make chromium` (installs Debian's chromium)")
    world = TinyWorld(tmp_path / "world", n_contracts=2, base=tiny)
    contracts = sorted(world.contracts)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with serve_in_thread(world.app(world.service(margin=-math.inf), token=TOKEN)) as url:
        asked = [
            call("POST", f"{url}/v1/answers", {"question": q, "contract_id": c}, auth)[1]
            for q, c in zip(QUESTIONS[:3], [contracts[0], contracts[1], contracts[0]])
        ]
        assert all(a["has_clause"] for a in asked)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1366, "height": 768})  # a laptop screen
                page.goto(f"{url}/review")
                expect(page).to_have_url(f"{url}/review/login")
                page.fill("input[name=reviewer]", "Ana Reviewer")
                page.fill("input[name=token]", TOKEN)
                page.click("button[type=submit]")
                expect(page).to_have_url(f"{url}/review")
                cards = page.locator("article.card")
                expect(cards).to_have_count(3)
                expect(page.locator("header")).to_contain_text("Ana Reviewer")
                shown = {cards.nth(i).get_attribute("data-request"): cards.nth(i) for i in range(3)}
                assert set(shown) == {a["request_id"] for a in asked}
                for a in asked:  # the served quote is highlighted in the contract passage
                    expect(shown[a["request_id"]].locator("mark")).to_have_text(a["answer"])
                order = [cards.nth(i).get_attribute("data-request") for i in range(3)]

                page.keyboard.press("1")  # right, on the first (focused) card
                expect(cards.nth(0).locator(".status")).to_contain_text("Saved: 1 feedback row(s) (right)")
                expect(cards.nth(1)).to_have_class("card current")
                selected = cards.nth(1).evaluate(SELECT_IN_PASSAGE)
                page.keyboard.press("c")  # the selected text is the right clause
                expect(cards.nth(1).locator(".status")).to_contain_text("(correct)")
                cards.nth(2).locator("button[data-action=no_clause]").click()
                expect(cards.nth(2).locator(".status")).to_contain_text("(no_clause)")
                page.screenshot(path=str(tmp_path / "review.png"))

                page.reload()  # rated answers leave the queue
                expect(page.locator("article.card")).to_have_count(0)
            finally:
                browser.close()
    rows, rejects = read_feedback_inbox(world.feedback, {c: "train" for c in world.contracts})
    assert rejects == [] and len(rows) == 3
    by_request = {r["event_id"][:16]: r for r in rows}
    by_id = {a["request_id"]: a for a in asked}
    right, corrected, none = (by_request[rid] for rid in order)
    assert (right["answer"], right["score"]) == (by_id[order[0]]["answer"], 1.0)
    assert (corrected["answer"], corrected["score"]) == (selected.strip(), 1.0)
    assert corrected["answer"] in world.contracts[corrected["contract_id"]]
    assert (none["answer"], none["score"]) == (NO_CLAUSE, 1.0)
    assert all(r["source"] == "human" and "reviewer: Ana Reviewer" in r["comment"] for r in rows)
    assert all(TOKEN not in r["comment"] for r in rows)
