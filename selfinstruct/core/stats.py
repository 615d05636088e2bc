"""Statistics for the benchmark and the promotion gate: bootstrap intervals, paired tests, agreement. numpy only.

    .venv/bin/python -m pytest -q tests/test_stats.py

Questions about one contract are not independent (they share its text, so a method that misreads a contract misses
several of its questions), so every interval here resamples contracts, not questions, when `clusters` gives a
contract id per value. Missing scores (None or NaN) are dropped and counted, never read as 0. Everything random
goes through `numpy.random.default_rng(seed)`, so a result is a function of its inputs and `seed`.

    >>> from selfinstruct.core.stats import bootstrap_ci, not_worse
    >>> bootstrap_ci([1, 0, 1, 1, None], clusters=["a", "a", "b", "c", "c"])  # unpacks as est, low, high
    Interval(estimate=0.75, low=0.5, high=1.0, n=4, n_dropped=1, n_clusters=3, reason='')
    >>> print(not_worse([1, 1, 0, 1], [1, 0, 0, 1], clusters=["a", "a", "b", "c"], margin=0.02)["reason"])
    candidate 0.75 vs served 0.50 on 4 paired questions (3 contracts): diff +0.25 [+0.00, +0.50] \
(95 % clustered bootstrap), margin 0.02 → passed
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import cast

import numpy as np


@dataclass(frozen=True)
class Interval:
    """A point estimate and its bootstrap interval; unpacks as `estimate, low, high`."""

    estimate: float | None
    low: float | None
    high: float | None
    n: int  # values used
    n_dropped: int  # None/NaN values left out
    n_clusters: int  # resampling units: contracts, or questions when unclustered
    reason: str = ""  # why low/high are None, when they are

    def __iter__(self):
        return iter((self.estimate, self.low, self.high))


def _missing(v) -> bool:
    return v is None or (isinstance(v, (float, np.floating)) and math.isnan(v))


def _units(values: Sequence, clusters: Sequence[Hashable] | None) -> tuple[np.ndarray, np.ndarray, int]:
    """Drop missing values; return (values, cluster code per value, number dropped)."""
    values = list(values)
    clusters = range(len(values)) if clusters is None else list(clusters)  # unclustered: each value its own unit
    if len(clusters) != len(values):
        raise ValueError(f"{len(values)} values but {len(clusters)} cluster ids")
    keep = [i for i, v in enumerate(values) if not _missing(v)]
    code: dict = {}
    codes = np.array([code.setdefault(clusters[i], len(code)) for i in keep], dtype=int)
    return np.array([float(values[i]) for i in keep]), codes, len(values) - len(keep)


def _draws(k: int, n_boot: int, seed: int) -> Iterator[np.ndarray]:
    """`n_boot` cluster samples: each draws `k` of the `k` cluster codes with replacement."""
    rng = np.random.default_rng(seed)
    return (rng.integers(0, k, size=k) for _ in range(n_boot))  # row by row: n_boot x k at once can be 100s of MB


def _samples(codes: np.ndarray, n_boot: int, seed: int) -> Iterator[np.ndarray]:
    """Positions of the values of each cluster sample, whole clusters in the order drawn."""
    k = int(codes.max()) + 1
    members = [np.flatnonzero(codes == j) for j in range(k)]
    return (np.concatenate([members[j] for j in d]) for d in _draws(k, n_boot, seed))


def _replicates(x: np.ndarray, codes: np.ndarray, n_boot: int, seed: int, stat: Callable) -> np.ndarray:
    """`stat` of `n_boot` samples, each drawing as many clusters as there are, with replacement, whole."""
    if stat is np.mean:  # the mean of a cluster sample is a weighted ratio of cluster sums: no concatenation
        k = int(codes.max()) + 1
        sums, sizes = np.bincount(codes, weights=x, minlength=k), np.bincount(codes, minlength=k)
        w = np.array([np.bincount(d, minlength=k) for d in _draws(k, n_boot, seed)], dtype=float)
        return (w @ sums) / (w @ sizes)
    return np.array([stat(x[at]) for at in _samples(codes, n_boot, seed)])


def _p_value(reps: np.ndarray, d: float) -> float:
    """Two-sided bootstrap p of an observed difference `d`: the replicates shifted to centre on 0 (the null), the
    share at least as far from 0 as `d`, (1 + count) / (replicates + 1)."""
    # The tolerance keeps float noise in d* - d from counting as "as extreme" when d != 0.
    return (1 + int(np.sum(np.abs(reps - d) >= abs(d) - 1e-12))) / (len(reps) + 1)


def _interval(x, codes, dropped, n_boot, alpha, seed, stat) -> tuple[Interval, np.ndarray | None]:
    k = len(set(codes.tolist()))
    if not len(x):
        return Interval(None, None, None, 0, dropped, 0, "no values"), None
    est = float(stat(x))
    if k < 2:  # one contract resamples to itself: a zero-width interval would claim certainty it does not have
        return Interval(est, None, None, len(x), dropped, k, "one resampling unit: no interval"), None
    reps = _replicates(x, codes, n_boot, seed, stat)
    low, high = np.quantile(reps, [alpha / 2, 1 - alpha / 2])
    return Interval(est, float(low), float(high), len(x), dropped, k), reps


def bootstrap_ci(
    values: Sequence[float | None],
    clusters: Sequence[Hashable] | None = None,
    n_boot: int = 2000,
    alpha: float = 0.05,
    seed: int = 0,
    stat: Callable = np.mean,
) -> Interval:
    """Percentile bootstrap interval of `stat` (the mean), resampling whole clusters when `clusters` is given."""
    x, codes, dropped = _units(values, clusters)
    return _interval(x, codes, dropped, n_boot, alpha, seed, stat)[0]


def paired_bootstrap(
    a: Sequence[float | None],
    b: Sequence[float | None],
    clusters: Sequence[Hashable] | None = None,
    n_boot: int = 2000,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict:
    """mean(a) - mean(b) over the questions both scored, its clustered interval and a two-sided bootstrap p-value.

    The p-value shifts the bootstrap distribution of the difference to centre on 0 (the null) and counts how often
    it lands at least as far from 0 as the observed difference: p = (1 + #{|d* - d| >= |d|}) / (n_boot + 1).
    """
    if len(a) != len(b):
        raise ValueError(f"{len(a)} scores in a but {len(b)} in b")
    both = [not (_missing(u) or _missing(v)) for u, v in zip(a, b)]  # a pair with either side missing is dropped
    fa, fb = cast(Sequence[float], a), cast(Sequence[float], b)  # read only where `both` says neither is missing
    diffs = [float(u) - float(v) if ok else None for u, v, ok in zip(fa, fb, both)]
    x, codes, dropped = _units(diffs, clusters)
    ci, reps = _interval(x, codes, dropped, n_boot, alpha, seed, np.mean)
    p = _p_value(reps, ci.estimate) if reps is not None and ci.estimate is not None else None
    kept = [(float(u), float(v)) for u, v, ok in zip(fa, fb, both) if ok]
    mean_a, mean_b = (float(m) for m in np.mean(kept, axis=0)) if kept else (None, None)
    return {
        "diff": ci.estimate,
        "low": ci.low,
        "high": ci.high,
        "p_value": p,
        "mean_a": mean_a,
        "mean_b": mean_b,
        "n": ci.n,
        "n_dropped": ci.n_dropped,
        "n_clusters": ci.n_clusters,
        "reason": ci.reason,
    }


def paired_stat_bootstrap(
    stat_a: Callable[[np.ndarray], float | None],
    stat_b: Callable[[np.ndarray], float | None],
    n: int,
    clusters: Sequence[Hashable] | None = None,
    n_boot: int = 2000,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict:
    """`paired_bootstrap` for statistics that are no mean of per-question values (Cohen's kappa, AUROC).

    `stat_a` and `stat_b` map the positions of a sample of the `n` rows to a number (None when undefined on it);
    both are computed on the same cluster samples. Returns b - a as `diff`, its percentile interval and the same
    two-sided p as `paired_bootstrap`, plus each statistic's own interval (`a`, `b`: `Interval`s). A sample where a
    statistic is undefined is left out of what needs it; `n_boot_used` counts the samples the difference kept.
    """
    everything = np.arange(n)
    a, b = stat_a(everything), stat_b(everything)
    units = range(n) if clusters is None else list(clusters)
    if len(units) != n:
        raise ValueError(f"{n} rows but {len(units)} cluster ids")
    code: dict = {}
    codes = np.array([code.setdefault(c, len(code)) for c in units], dtype=int)
    k = len(code)
    reason = "no rows" if not n else ("one resampling unit: no interval" if k < 2 else "")
    reps_a: list[float] = []
    reps_b: list[float] = []
    reps_d: list[float] = []
    for at in _samples(codes, n_boot, seed) if not reason else ():
        ra, rb = stat_a(at), stat_b(at)
        if ra is not None:
            reps_a.append(float(ra))
        if rb is not None:
            reps_b.append(float(rb))
        if ra is not None and rb is not None:
            reps_d.append(float(rb) - float(ra))
    diff = None if a is None or b is None else float(b) - float(a)

    def interval(est: float | None, reps: list[float]) -> Interval:
        if est is None or not reps:
            return Interval(est, None, None, n, 0, k, reason or "undefined on the rows or on every resample")
        low, high = np.quantile(reps, [alpha / 2, 1 - alpha / 2])
        return Interval(float(est), float(low), float(high), n, 0, k)

    d = interval(diff, reps_d)
    return {
        "diff": diff,
        "low": d.low,
        "high": d.high,
        "p_value": _p_value(np.asarray(reps_d), diff) if diff is not None and reps_d else None,
        "a": interval(a, reps_a),
        "b": interval(b, reps_b),
        "n": n,
        "n_clusters": k,
        "n_boot_used": len(reps_d),
        "reason": d.reason,
    }


def _pairs(x: Sequence, y: Sequence) -> list[tuple]:
    if len(x) != len(y):
        raise ValueError(f"{len(x)} labels in x but {len(y)} in y")
    return [(u, v) for u, v in zip(x, y) if not (_missing(u) or _missing(v))]


def mcnemar(a: Sequence[int | None], b: Sequence[int | None]) -> dict:
    """Exact McNemar test on paired 0/1 outcomes: b01 = (a=0, b=1), b10 = (a=1, b=0), two-sided binomial p."""
    pairs = [(int(u), int(v)) for u, v in _pairs(a, b)]
    if any(u not in (0, 1) or v not in (0, 1) for u, v in pairs):
        raise ValueError("mcnemar needs 0/1 outcomes")
    b01, b10 = sum(p == (0, 1) for p in pairs), sum(p == (1, 0) for p in pairs)
    m = b01 + b10
    # Under the null each discordant pair is a fair coin; double the smaller tail, capped at 1 (1.0 when m == 0).
    p = min(1.0, 2 * sum(math.comb(m, i) for i in range(min(b01, b10) + 1)) / 2**m)
    return {"b01": b01, "b10": b10, "p_value": p, "n": len(pairs), "n_dropped": len(a) - len(pairs)}


def agreement_rate(x: Sequence, y: Sequence) -> float | None:
    """Share of pairs (neither missing) where the two raters give the same label; None with no pairs."""
    pairs = _pairs(x, y)
    return sum(u == v for u, v in pairs) / len(pairs) if pairs else None


def cohen_kappa(x: Sequence, y: Sequence) -> float | None:
    """Cohen's kappa for two raters over any labels; None when undefined (no pairs, or chance agreement is 1)."""
    pairs = _pairs(x, y)
    if not pairs:
        return None
    n, cx, cy = len(pairs), Counter(u for u, _ in pairs), Counter(v for _, v in pairs)
    observed = sum(u == v for u, v in pairs) / n
    expected = sum(cx[c] * cy[c] for c in cx) / n**2
    return (observed - expected) / (1 - expected) if expected < 1 else None


def auroc(scores: Sequence[float | None], labels: Sequence[int | bool | None]) -> float | None:
    """P(score of a positive > score of a negative), ties counted half; None when a class is absent."""
    pairs = _pairs(scores, labels)
    s, y = np.array([float(u) for u, _ in pairs]), np.array([bool(v) for _, v in pairs], dtype=bool)
    n1, n0 = int(y.sum()), int((~y).sum())
    if not n1 or not n0:
        return None
    # Mann-Whitney U from mid-ranks: tied scores share the mean of their ranks, which scores a tie as half.
    _, inv, counts = np.unique(s, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2)[inv]
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def wilson_interval(k: int, n: int, alpha: float = 0.05) -> tuple[float | None, float | None]:
    """Wilson score interval for k successes in n; unlike k/n ± z·se it stays in [0, 1] and is honest at k=0."""
    if n <= 0:
        return None, None
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    z, p = NormalDist().inv_cdf(1 - alpha / 2), k / n
    centre, half = p + z * z / (2 * n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    denom = 1 + z * z / n
    return max(0.0, (centre - half) / denom), min(1.0, (centre + half) / denom)


def _signed(v: float) -> str:
    return f"{v:+.2f}".replace("-", "\u2212")  # a typographic minus, as the gate's reason is read by people


def not_worse(
    candidate: Sequence[float | None],
    served: Sequence[float | None],
    clusters: Sequence[Hashable] | None = None,
    margin: float = 0.02,
    alpha: float = 0.05,
    n_boot: int = 2000,
    seed: int = 0,
) -> dict:
    """The promotion gate's rule: pass only when the interval's lower bound of candidate - served exceeds -margin.

    With alpha=0.05 that is the 2.5 % quantile of the paired (clustered) bootstrap: a non-inferiority test at
    one-sided 2.5 %. No interval (no pairs, one contract) fails: the gate cannot show the candidate is not worse.
    """
    r = paired_bootstrap(candidate, served, clusters, n_boot=n_boot, alpha=alpha, seed=seed)
    passed = r["low"] is not None and r["low"] > -margin
    kind = "clustered bootstrap" if clusters is not None else "bootstrap"
    units = f" ({r['n_clusters']} contracts)" if clusters is not None else ""
    dropped = f", {r['n_dropped']} pairs dropped (missing score)" if r["n_dropped"] else ""
    if r["low"] is None:
        reason = f"no interval on {r['n']} paired questions{units}: {r['reason']}{dropped} \u2192 failed"
    else:
        reason = (
            f"candidate {r['mean_a']:.2f} vs served {r['mean_b']:.2f} on {r['n']} paired questions{units}: "
            f"diff {_signed(r['diff'])} [{_signed(r['low'])}, {_signed(r['high'])}] "
            f"({(1 - alpha) * 100:g} % {kind}), margin {margin:.2f}{dropped} \u2192 "
            f"{'passed' if passed else 'failed'}"
        )
    return {
        "passed": passed,
        "diff": r["diff"],
        "low": r["low"],
        "high": r["high"],
        "reason": reason,
        "n": r["n"],
        "n_clusters": r["n_clusters"],
        "n_dropped": r["n_dropped"],
    }


def power_note(n: int, p0: float, delta: float, alpha: float = 0.05, design_effect: float = 1.0) -> dict:
    """Approximate power of a two-sided paired test to detect `delta` over base rate `p0` with `n` questions.

    Normal approximation treating the two methods as independent per question, which overstates the variance
    (real methods agree more), so the power is a floor. `design_effect` (1 + (m-1)·ICC for m questions per
    contract) shrinks n to the effective number of independent questions.
    """
    p1 = p0 + delta
    if not (0 <= p0 <= 1 and 0 <= p1 <= 1) or n <= 0:
        raise ValueError(f"need n > 0 and p0, p0+delta in [0, 1]; got n={n}, p0={p0}, delta={delta}")
    se = math.sqrt((p0 * (1 - p0) + p1 * (1 - p1)) * design_effect / n)
    z = NormalDist().inv_cdf(1 - alpha / 2)
    power = NormalDist().cdf(abs(delta) / se - z) if se > 0 else 1.0
    note = f"{n} paired questions at base {p0:.2f}: ~{power:.0%} power to detect {_signed(delta)} (alpha {alpha:g})"
    return {"power": power, "se": se, "note": note}
