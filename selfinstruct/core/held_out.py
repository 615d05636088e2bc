"""The held-out guard: training data never comes from eval-split contracts.

    refuse_eval_contracts({r["contract_id"] for r in rows}, eval_ids, "judge training rows")   # or EvalSplitLeak

Dagster-free. The library's training-data builders (the retriever's pairs, the judge's candidate rows) call it
before building anything; the asset checks that verify published data and models share
`selfinstruct_assets/held_out.py`.
"""

from __future__ import annotations

from collections.abc import Collection


class EvalSplitLeak(ValueError):
    """Training data from held-out (eval-split) contracts; the message names them."""


def eval_leaks(contract_ids: Collection[str], eval_contract_ids: Collection[str]) -> list[str]:
    """The eval-split contracts among `contract_ids`, sorted."""
    return sorted(set(contract_ids) & set(eval_contract_ids))


def refuse_eval_contracts(contract_ids: Collection[str], eval_contract_ids: Collection[str], what: str) -> None:
    """Raise `EvalSplitLeak` naming up to five of them when any of `contract_ids` is an eval-split contract."""
    leaked = eval_leaks(contract_ids, eval_contract_ids)
    if leaked:
        more = f" and {len(leaked) - 5} more" if len(leaked) > 5 else ""
        raise EvalSplitLeak(
            f"{what} include {len(leaked)} eval-split contract(s): {', '.join(leaked[:5])}{more}. "
            "Held-out contracts are never trained on: pass train-split rows only."
        )
