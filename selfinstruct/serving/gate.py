"""The quality gate: which adapter of a benchmark run is the candidate, and may it replace the served one?

    best = pick_candidate(rows)                      # benchmark_scores rows of one run
    verdict = paired_gate("sft", cand_answers, served_answers, tolerance=0.02)   # benchmark_answers rows
    verdict = gate(best, None)                       # nothing served yet: the candidate starts
    verdict["passed"], verdict["reason"]

Dagster-free. A row is a benchmark_scores row (scores as columns) or a promoted entry (scores in "scores").
`tolerance` means the same in both: the largest drop of the metric (absolute) a candidate may show. `gate`
compares two means; `paired_gate`, the rule when something is served, asks that the 95 % lower bound of
(candidate - served) on the questions both answered, resampling contracts, be above -tolerance.
"""

import math
from collections.abc import Sequence

from selfinstruct.core.artifacts import ADAPTER_METHODS
from selfinstruct.core.stats import not_worse


def metric_value(row: dict, metric: str) -> float | None:
    """`row[metric]` for a benchmark row, `row["scores"][metric]` for a promoted entry."""
    value = row[metric] if metric in row else (row.get("scores") or {}).get(metric)
    # An average over zero judged answers comes back as NaN: no more comparable than a missing score.
    return None if value is None or isinstance(value, bool) or math.isnan(float(value)) else float(value)


def pick_candidate(rows: Sequence[dict], metric: str = "cuad_match") -> dict | None:
    """The adapter row best on `metric` (ties: higher judge_score, then method name); None if none is scored."""
    runs = sorted({str(r["run_id"]) for r in rows if r.get("run_id")})
    if len(runs) > 1:
        raise ValueError(
            f"pick_candidate got rows of {len(runs)} benchmark runs ({', '.join(runs)}); pass the "
            "rows of one run_id (the latest: order by created_at desc)"
        )
    if rows and not any(metric in r for r in rows):
        raise ValueError(f"no benchmark row has a {metric!r} column; use one of {sorted(rows[0])}")
    scored = [r for r in rows if r.get("method") in ADAPTER_METHODS and metric_value(r, metric) is not None]

    def rank(r: dict) -> tuple[float, float, str]:
        value, judge = metric_value(r, metric), metric_value(r, "judge_score")
        assert value is not None  # `scored` holds only rows with a value
        return -value, -(-math.inf if judge is None else judge), r["method"]

    if not scored:
        return None
    best = min(scored, key=rank)
    return dict(best)


def gate(candidate: dict, current: dict | None, tolerance: float = 0.02, metric: str = "cuad_match") -> dict:
    """Whether `candidate` may replace `current` (a benchmark row or a promoted entry): not worse on `metric`
    by more than `tolerance` (absolute)."""
    _check_tolerance(tolerance, metric)
    cand, cur = metric_value(candidate, metric), (metric_value(current, metric) if current is not None else None)
    delta = cand - cur if cand is not None and cur is not None else None
    name = candidate.get("method", "the candidate")
    if cand is None:
        passed, reason = False, f"{name} has no {metric} score, so it cannot be compared and is not promoted"
    elif cur is None:
        served = "nothing is served yet" if current is None else f"the served model has no {metric} score"
        passed, reason = True, f"{served}; {name} starts with {metric} {cand:.3f}"
    else:
        # The epsilon keeps a drop of exactly `tolerance` inside it despite float rounding (0.52 - 0.02).
        passed = cand >= cur - tolerance - 1e-12
        reason = (
            f"{name} {metric} {cand:.3f} vs served {cur:.3f} (delta {delta:+.3f}) is "
            f"{'within' if passed else 'beyond'} the tolerance {tolerance}"
        )
    return {
        "passed": passed,
        "metric": metric,
        "candidate": cand,
        "current": cur,
        "delta": delta,
        "tolerance": tolerance,
        "reason": reason,
    }


def _check_tolerance(tolerance: float, metric: str) -> None:
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not 0 <= tolerance <= 1:
        raise ValueError(
            f"tolerance must be a number in [0, 1] (the largest drop in {metric} let through), got {tolerance!r}"
        )


def paired_gate(
    name: str,
    candidate: Sequence[dict],
    served: Sequence[dict],
    tolerance: float = 0.02,
    metric: str = "cuad_match",
    n_boot: int = 2000,
) -> dict:
    """`gate` on the same evidence as the benchmark: per-question `metric` of both models on this run's questions
    (benchmark_answers rows), paired by question_id and clustered by contract; passes only when not worse by
    `tolerance` at 95 % confidence (stats.not_worse). No paired question, or one contract, fails."""
    _check_tolerance(tolerance, metric)
    theirs = {r["question_id"]: r for r in served if r.get(metric) is not None}
    pairs = [
        (r, theirs[r["question_id"]]) for r in candidate if r.get(metric) is not None and r["question_id"] in theirs
    ]
    test = not_worse(
        [float(a[metric]) for a, _ in pairs],
        [float(b[metric]) for _, b in pairs],
        [a["contract_id"] for a, _ in pairs],
        margin=tolerance,
        n_boot=n_boot,
    )
    cand = sum(float(a[metric]) for a, _ in pairs) / len(pairs) if pairs else None
    cur = sum(float(b[metric]) for _, b in pairs) / len(pairs) if pairs else None
    return {
        "passed": bool(test["passed"]),
        "metric": metric,
        "candidate": cand,
        "current": cur,
        "delta": test["diff"],
        "low": test["low"],
        "high": test["high"],
        "n_paired": test["n"],
        "tolerance": tolerance,
        "reason": f"{name} {metric}: {test['reason']}",
    }
