"""Benchmark statistics: known values for the tests, seeded simulations for the bootstrap, the promotion gate."""

import doctest
import math

import numpy as np
import pytest

from selfinstruct.core import stats
from selfinstruct.core.stats import (
    agreement_rate,
    auroc,
    bootstrap_ci,
    cohen_kappa,
    mcnemar,
    not_worse,
    paired_bootstrap,
    power_note,
    wilson_interval,
)


def _clustered(rng, n_contracts=40, per_contract=10, spread=0.45):
    """0/1 scores whose success rate is shared within a contract: the correlation the clustered bootstrap is for."""
    rates = np.clip(0.5 + rng.uniform(-spread, spread, n_contracts), 0, 1)
    values = [int(rng.random() < r) for r in rates for _ in range(per_contract)]
    return values, [f"c{i}" for i in range(n_contracts) for _ in range(per_contract)]


def test_module_docstring_example_runs():
    assert doctest.testmod(stats).failed == 0


@pytest.mark.parametrize(
    "a, b, b01, b10, p",
    [
        ([1], [0], 0, 1, 1.0),  # one win, no losses: nothing to see
        ([1] * 10, [0] * 10, 0, 10, 2 / 2**10),  # 0.00195
        ([1] * 9 + [0], [0] * 9 + [1], 1, 9, 2 * (1 + 10) / 2**10),  # 0.0215
        ([1, 0, 1, 0], [0, 1, 0, 1], 2, 2, 1.0),
        ([1, 1, 0], [1, 1, 0], 0, 0, 1.0),  # no discordant pairs
        ([], [], 0, 0, 1.0),
    ],
)
def test_mcnemar_exact_p_values(a, b, b01, b10, p):
    r = mcnemar(a, b)
    assert (r["b01"], r["b10"]) == (b01, b10)
    assert r["p_value"] == pytest.approx(p)


def test_mcnemar_drops_missing_and_rejects_non_binary():
    r = mcnemar([1, None, 1, float("nan")], [0, 1, 0, 0])
    assert (r["b10"], r["n"], r["n_dropped"]) == (2, 2, 2)
    with pytest.raises(ValueError):
        mcnemar([2], [0])
    with pytest.raises(ValueError):
        mcnemar([1, 0], [1])


@pytest.mark.parametrize(
    "k, n, low, high", [(1, 32, 0.0055, 0.1574), (0, 10, 0.0, 0.2775), (10, 10, 0.7225, 1.0), (50, 100, 0.4038, 0.5962)]
)
def test_wilson_interval(k, n, low, high):
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(low, abs=1e-3) and hi == pytest.approx(high, abs=1e-3)


def test_wilson_interval_edges():
    assert wilson_interval(0, 0) == (None, None)
    assert wilson_interval(1, 32, alpha=0.01)[1] > wilson_interval(1, 32)[1]  # 99 % is wider
    with pytest.raises(ValueError):
        wilson_interval(5, 3)


@pytest.mark.parametrize(
    "x, y, kappa",
    [
        ([1, 0, 1, 0, 2], [1, 0, 1, 0, 2], 1.0),
        ([1, 1, 0, 0], [1, 0, 1, 0], 0.0),  # agreement exactly at chance
        ([1, 0, 1, 0], [0, 1, 0, 1], -1.0),
        # the textbook 2x2: yes/yes 20, yes/no 5, no/yes 10, no/no 15 -> p_o 0.7, p_e 0.5, kappa 0.4
        (["y"] * 25 + ["n"] * 25, ["y"] * 20 + ["n"] * 5 + ["y"] * 10 + ["n"] * 15, 0.4),
        ([1, 1, 1], [1, 1, 1], None),  # both constant and equal: chance agreement is 1, kappa undefined
        ([], [], None),
    ],
)
def test_cohen_kappa(x, y, kappa):
    assert cohen_kappa(x, y) == (None if kappa is None else pytest.approx(kappa))


def test_kappa_near_zero_for_independent_raters():
    rng = np.random.default_rng(1)
    x, y = rng.integers(0, 3, 4000).tolist(), rng.integers(0, 3, 4000).tolist()
    assert abs(cohen_kappa(x, y)) < 0.05
    assert agreement_rate(x, y) == pytest.approx(1 / 3, abs=0.03)  # raw agreement is far from 0: kappa corrects it


def test_agreement_rate_skips_missing():
    assert agreement_rate([1, 0, None, 1], [1, 1, 0, float("nan")]) == 0.5
    assert agreement_rate([None], [1]) is None
    assert cohen_kappa([1, 0, None], [1, 0, 1]) == 1.0


@pytest.mark.parametrize(
    "scores, labels, expected",
    [
        ([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1], 1.0),
        ([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1], 0.0),
        ([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1], 0.75),
        ([0.5, 0.5, 0.9], [0, 1, 1], 0.75),  # the tie counts half: (0.5 + 1) / 2
        ([0.3, 0.3, 0.3, 0.3], [0, 1, 0, 1], 0.5),
        ([0.1, None, 0.9], [0, 0, 1], 1.0),
        ([0.1, 0.2], [1, 1], None),  # one class only
        ([], [], None),
    ],
)
def test_auroc(scores, labels, expected):
    assert auroc(scores, labels) == (None if expected is None else pytest.approx(expected))


def test_bootstrap_interval_covers_true_mean():
    rng, covered, sims = np.random.default_rng(7), 0, 150
    for i in range(sims):
        est, low, high = bootstrap_ci((rng.random(60) < 0.3).astype(int).tolist(), n_boot=400, seed=i)
        covered += low <= 0.3 <= high
    assert 0.88 <= covered / sims <= 0.99  # nominal 95 %; the percentile bootstrap runs a little short at n=60


def test_clustered_interval_is_wider_when_contracts_are_correlated():
    values, clusters = _clustered(np.random.default_rng(3))
    plain, clustered = bootstrap_ci(values), bootstrap_ci(values, clusters=clusters)
    assert plain.estimate == clustered.estimate and clustered.n_clusters == 40 and plain.n_clusters == 400
    assert (clustered.high - clustered.low) > 1.5 * (plain.high - plain.low)


def test_bootstrap_counts_missing_and_handles_degenerate_inputs():
    ci = bootstrap_ci([1.0, None, float("nan"), 0.0, np.float64("nan"), 1.0])
    assert (ci.n, ci.n_dropped, ci.estimate) == (3, 3, pytest.approx(2 / 3))
    empty = bootstrap_ci([None, None])
    assert (empty.estimate, empty.low, empty.high, empty.n_dropped) == (None, None, None, 2) and empty.reason
    one = bootstrap_ci([1, 0, 1], clusters=["a", "a", "a"])  # one contract: no honest interval
    assert one.estimate == pytest.approx(2 / 3) and one.low is None and "one" in one.reason
    assert tuple(bootstrap_ci([])) == (None, None, None)
    with pytest.raises(ValueError):
        bootstrap_ci([1, 0], clusters=["a"])


def test_bootstrap_other_statistic():
    est, low, high = bootstrap_ci([1, 2, 3, 4, 100], stat=np.median, n_boot=300)
    assert est == 3 and 1 <= low <= 3 <= high <= 100


def test_deterministic_under_seed():
    values, clusters = _clustered(np.random.default_rng(5))
    assert bootstrap_ci(values, clusters, seed=11) == bootstrap_ci(values, clusters, seed=11)
    assert bootstrap_ci(values, clusters, seed=11) != bootstrap_ci(values, clusters, seed=12)
    b = values[::-1]
    assert paired_bootstrap(values, b, clusters, seed=4) == paired_bootstrap(values, b, clusters, seed=4)


def test_paired_bootstrap_detects_a_clear_difference():
    rng = np.random.default_rng(8)
    served, clusters = _clustered(rng)
    # the candidate fixes a third of the served model's misses and breaks nothing
    candidate = [1 if s or rng.random() < 0.33 else 0 for s in served]
    r = paired_bootstrap(candidate, served, clusters)
    assert r["diff"] > 0.1 and r["low"] > 0 and r["p_value"] < 0.01
    assert r["diff"] == pytest.approx(r["mean_a"] - r["mean_b"])


def test_paired_bootstrap_does_not_find_a_null_difference():
    rng = np.random.default_rng(9)
    a, clusters = _clustered(rng)
    b = [int(rng.random() < 0.5) if rng.random() < 0.2 else v for v in a]  # same skill, some noise
    r = paired_bootstrap(a, b, clusters)
    assert r["p_value"] > 0.05 and r["low"] < 0 < r["high"]
    assert paired_bootstrap(a, a, clusters)["p_value"] == 1.0


def test_paired_bootstrap_drops_half_missing_pairs():
    r = paired_bootstrap([1, None, 1, 0], [0, 1, float("nan"), 0], clusters=["a", "b", "c", "d"])
    assert (r["n"], r["n_dropped"], r["n_clusters"]) == (2, 2, 2)
    assert (r["mean_a"], r["mean_b"], r["diff"]) == (0.5, 0.0, 0.5)
    none = paired_bootstrap([], [])
    assert none["diff"] is None and none["p_value"] is None


def test_gate_passes_a_candidate_that_is_not_worse():
    rng = np.random.default_rng(10)
    served, clusters = _clustered(rng, n_contracts=60)
    candidate = [1 if s or rng.random() < 0.1 else 0 for s in served]
    g = not_worse(candidate, served, clusters, margin=0.02)
    assert g["passed"] and g["low"] > -0.02
    assert "600 paired questions (60 contracts)" in g["reason"] and "95 % clustered bootstrap" in g["reason"]
    assert g["reason"].endswith("\u2192 passed") and "margin 0.02" in g["reason"]


def test_gate_fails_a_worse_or_unproven_candidate():
    rng = np.random.default_rng(11)
    served, clusters = _clustered(rng)
    worse = [0 if s and rng.random() < 0.3 else s for s in served]
    g = not_worse(worse, served, clusters, margin=0.02)
    assert not g["passed"] and g["high"] < 0 and g["reason"].endswith("failed")
    assert "\u2212" in g["reason"]  # negative bounds are printed with a real minus sign
    # equal on average but noisy and small: the point estimate is fine, the interval is not
    a, b = [1, 1, 0, 0, 1, 0], [0, 0, 1, 1, 1, 0]  # wins on contract a, losses on b, a draw on c
    small = not_worse(a, b, ["a", "a", "b", "b", "c", "c"], margin=0.02)
    assert small["diff"] == 0 and not small["passed"]


def test_gate_fails_closed_without_an_interval():
    g = not_worse([1, 1], [0, 0], clusters=["a", "a"], margin=0.02)
    assert not g["passed"] and g["low"] is None and "no interval" in g["reason"]
    g = not_worse([None], [1], margin=0.02)
    assert not g["passed"] and "1 pairs dropped" in g["reason"]


def test_power_note():
    r = power_note(400, 0.4, 0.1)
    assert r["power"] == pytest.approx(0.815, abs=0.005) and "400 paired questions" in r["note"]
    assert power_note(100, 0.4, 0.1)["power"] < r["power"] < power_note(1600, 0.4, 0.1)["power"]
    assert power_note(400, 0.4, 0.1, design_effect=2.0)["power"] < r["power"]
    assert math.isclose(power_note(400, 0.4, 0.0)["power"], 0.025, abs_tol=1e-3)  # one tail of alpha
    with pytest.raises(ValueError):
        power_note(100, 0.95, 0.1)


def test_paired_p_value_is_two_sided_and_agrees_with_the_interval():
    rng = np.random.default_rng(12)
    served, clusters = _clustered(rng)
    candidate = [int(rng.random() < 0.7) if rng.random() < 0.3 else s for s in served]  # modest gain, 0 < p < 1
    ab, ba = paired_bootstrap(candidate, served, clusters), paired_bootstrap(served, candidate, clusters)
    assert ab["p_value"] == pytest.approx(ba["p_value"]) and ab["diff"] == pytest.approx(-ba["diff"])
    se = (ab["high"] - ab["low"]) / (2 * 1.96)  # the normal test on the bootstrap's spread should roughly agree
    normal_p = 2 * (1 - 0.5 * (1 + math.erf(abs(ab["diff"]) / se / math.sqrt(2))))
    assert 0.001 < ab["p_value"] < 0.5 and ab["p_value"] == pytest.approx(normal_p, rel=0.5, abs=0.01)


def test_paired_stat_bootstrap_of_a_mean_matches_paired_bootstrap():
    from selfinstruct.core.stats import paired_stat_bootstrap

    rng = np.random.default_rng(5)
    a, b = rng.integers(0, 2, 60).astype(float), rng.integers(0, 2, 60).astype(float)
    clusters = [f"c{i // 4}" for i in range(60)]
    want = paired_bootstrap(b, a, clusters, n_boot=400)
    got = paired_stat_bootstrap(lambda at: a[at].mean(), lambda at: b[at].mean(), 60, clusters, n_boot=400)
    assert got["diff"] == pytest.approx(want["diff"]) and got["n_clusters"] == want["n_clusters"] == 15
    assert (got["low"], got["high"]) == (pytest.approx(want["low"]), pytest.approx(want["high"]))
    assert got["p_value"] == pytest.approx(want["p_value"], abs=2 / 401) and got["n_boot_used"] == 400
    assert got["a"].estimate == pytest.approx(a.mean()) and got["b"].low <= b.mean() <= got["b"].high


def test_paired_stat_bootstrap_leaves_out_samples_where_a_statistic_is_undefined():
    from selfinstruct.core.stats import paired_stat_bootstrap

    labels = np.array([1, 1, 0, 0, 1, 0])
    scores = np.array([0.9, 0.8, 0.2, 0.1, 0.7, 0.3])
    by_auroc = lambda at: auroc(scores[at].tolist(), labels[at].tolist())  # noqa: E731 - None on a one-class sample
    got = paired_stat_bootstrap(by_auroc, by_auroc, 6, ["x", "x", "y", "y", "z", "z"], n_boot=200)
    assert got["diff"] == 0.0 and 0 < got["n_boot_used"] < 200 and got["p_value"] == 1.0
    alone = paired_stat_bootstrap(by_auroc, by_auroc, 6, ["x"] * 6)
    assert alone["low"] is None and alone["p_value"] is None and "one resampling unit" in alone["reason"]
    with pytest.raises(ValueError, match="6 rows but 2 cluster ids"):
        paired_stat_bootstrap(by_auroc, by_auroc, 6, ["x", "y"])
