"""Drift statistics of the continuous loop: MMD, category mix, quality drop, the decision and the flat row."""

import itertools
import json
import math
import statistics

import numpy as np
import pytest

from selfinstruct.drift import statistics as drift
from selfinstruct.drift.statistics import DriftThresholds, category_mix, decide, embedding_shift, flatten, quality_drop


def cluster(rng, center, n, spread=0.3):
    x = np.asarray(center, dtype=np.float32) + spread * rng.normal(size=(n, len(center))).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def axis(i, d=16):
    v = np.zeros(d, dtype=np.float32)
    v[i] = 1.0
    return v


def test_same_distribution_gives_small_mmd_and_no_drift():
    rng = np.random.default_rng(1)
    s = embedding_shift(cluster(rng, axis(0), 400), cluster(rng, axis(0), 200))
    assert (s["n_reference"], s["n_recent"]) == (400, 200)
    assert abs(s["mmd"]) < 0.02 and s["centroid_cosine_distance"] < 0.01
    assert decide({"queries_embedding": s}, DriftThresholds()) == (False, [])


def test_shifted_cluster_gives_mmd_above_threshold_and_drift():
    rng = np.random.default_rng(2)
    s = embedding_shift(cluster(rng, axis(0), 400), cluster(rng, axis(1), 200))
    assert s["mmd"] > 2 * DriftThresholds().embedding_shift and s["centroid_cosine_distance"] > 0.5
    drifted, reasons = decide({"queries_embedding": s}, DriftThresholds())
    assert drifted and reasons == [f"queries_embedding: mmd {s['mmd']:.3f} > 0.100 (n=200)"]


def test_mmd_matches_the_unbiased_estimator_written_out_by_loops():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(5, 3)), rng.normal(loc=0.7, size=(4, 3))
    pooled = list(x) + list(y)
    sigma = statistics.median(float(np.linalg.norm(a - b)) for a, b in itertools.combinations(pooled, 2))

    def k(a, b):
        return math.exp(-float(np.sum((a - b) ** 2)) / (2 * sigma**2))

    def within(s):
        return sum(k(a, b) for i, a in enumerate(s) for j, b in enumerate(s) if i != j) / (len(s) * (len(s) - 1))

    expected = within(x) + within(y) - 2 * sum(k(a, b) for a in x for b in y) / (len(x) * len(y))
    assert embedding_shift(x, y)["mmd"] == pytest.approx(expected, rel=1e-9)


def test_mostly_duplicate_texts_still_separate_distinct_piles():
    # Over half the pooled pairs are identical, so the plain median distance would be 0.
    ref, rec = np.tile(axis(0, 4), (30, 1)), np.tile(axis(1, 4), (10, 1))
    assert embedding_shift(ref, rec)["mmd"] > 0.5
    assert embedding_shift(ref, ref[:10])["mmd"] == 0.0


def test_subsampling_bounds_cost_and_is_seeded(monkeypatch):
    rng = np.random.default_rng(4)
    ref, rec = cluster(rng, axis(0), 10_000), cluster(rng, axis(0), 3_000)
    seen, kernel = [], drift._unbiased_mmd2
    monkeypatch.setattr(drift, "_unbiased_mmd2", lambda x, y: seen.append((len(x), len(y))) or kernel(x, y))
    s = embedding_shift(ref, rec)
    assert seen == [(2000, 2000)]  # the kernel never sees more than max_items rows a side
    assert (s["n_reference"], s["n_recent"]) == (10_000, 3_000) and abs(s["mmd"]) < 0.02
    small = [embedding_shift(ref, rec, max_items=50, seed=seed)["mmd"] for seed in (0, 0, 1)]
    assert small[0] == small[1] and small[0] != small[2]


def test_empty_side_gives_none_and_is_not_judged():
    s = embedding_shift(np.empty((0, 16), dtype=np.float32), cluster(np.random.default_rng(5), axis(0), 30))
    assert s == {"n_reference": 0, "n_recent": 30, "centroid_cosine_distance": None, "mmd": None}
    assert embedding_shift([], np.ones((3, 4)))["mmd"] is None
    drifted, reasons = decide({"contracts_embedding": s}, DriftThresholds())
    assert not drifted and reasons == ["contracts_embedding: mmd unavailable (a side has too little data), not judged"]


def test_bad_embeddings_raise():
    rng = np.random.default_rng(6)
    with pytest.raises(ValueError, match="dimensions"):
        embedding_shift(cluster(rng, axis(0), 10), cluster(rng, axis(0, 8), 10))
    with pytest.raises(ValueError, match="NaN"):
        embedding_shift(np.full((3, 4), np.nan), np.ones((3, 4)))
    with pytest.raises(ValueError, match="2-d"):
        embedding_shift(np.ones(4), np.ones((3, 4)))
    with pytest.raises(ValueError, match="max_items"):
        embedding_shift(np.ones((3, 4)), np.ones((3, 4)), max_items=1)


NAMES = ["law", "term", "ip"]
CATS = np.eye(3, dtype=np.float32)


def test_category_mix_on_a_hand_built_example():
    ref = np.array([[0.9, 0.3, 0.1], [0.8, 0.1, 0.5], [0.2, 0.9, 0.1], [0.1, 0.3, 0.9]])  # law, law, term, ip
    rec = np.array([[0.7, 0.2, 0.6], [0.1, 0.4, 0.8], [0.3, 0.2, 0.9], [0.0, 0.0, 1.0]])  # law, ip, ip, ip
    m = category_mix(ref, rec, CATS, NAMES)
    assert m["reference_mix"] == {"law": 0.5, "term": 0.25, "ip": 0.25}
    assert m["recent_mix"] == {"law": 0.25, "term": 0.0, "ip": 0.75}
    assert m["tvd"] == pytest.approx(0.5 * (0.25 + 0.25 + 0.5))
    # m = (3/8, 1/8, 1/2); KL(p||m) = 0.5*log2(4/3) + 0.25 - 0.25; KL(q||m) = 0.5*log2(3/2); their mean is 1/4.
    assert m["js_divergence"] == pytest.approx(0.25)
    assert m["top_shift"] == "ip" and (m["n_reference"], m["n_recent"]) == (4, 4)


def test_category_assignment_uses_cosine_even_for_unnormalised_category_vectors():
    m = category_mix(np.array([[0.4, 0.6, 0.0]]), np.array([[0.6, 0.4, 0.0]]), CATS * [[5], [1], [1]], NAMES)
    assert m["reference_mix"]["term"] == 1.0 and m["recent_mix"]["law"] == 1.0


def test_js_divergence_bounds():
    same = category_mix(CATS, CATS[::-1], CATS, NAMES)
    assert (same["tvd"], same["js_divergence"], same["top_shift"]) == (0.0, 0.0, None)
    apart = category_mix(CATS[:1], CATS[2:], CATS, NAMES)
    assert apart["tvd"] == 1.0 and apart["js_divergence"] == pytest.approx(1.0) and apart["top_shift"] == "law"
    rng = np.random.default_rng(7)
    for _ in range(20):
        js = category_mix(rng.normal(size=(9, 3)), rng.normal(size=(5, 3)), CATS, NAMES)["js_divergence"]
        assert 0.0 <= js <= 1.0


def test_category_mix_bad_input():
    with pytest.raises(ValueError, match="dimensions"):
        category_mix(np.ones((2, 4)), np.ones((2, 4)), CATS, NAMES)
    with pytest.raises(ValueError, match="category_names"):
        category_mix(CATS, CATS, CATS, ["law", "term"])
    with pytest.raises(ValueError, match="unique"):
        category_mix(CATS, CATS, CATS, ["law", "law", "ip"])
    with pytest.raises(ValueError, match="all-zero"):
        category_mix(np.zeros((1, 3)), CATS, CATS, NAMES)
    empty = category_mix(np.empty((0, 3)), CATS, CATS, NAMES)
    assert empty["reference_mix"] == {} and empty["tvd"] is None and empty["js_divergence"] is None


def test_quality_drop_sign_and_bad_scores():
    worse = quality_drop([0.8, 0.9], [0.5, 0.6, 0.4])
    assert worse["drop"] == pytest.approx(0.35) and worse["recent_mean"] == pytest.approx(0.5)
    assert quality_drop([0.5], [0.9])["drop"] == pytest.approx(-0.4)
    assert quality_drop([], [0.9]) == {
        "baseline_mean": None,
        "recent_mean": 0.9,
        "drop": None,
        "n_baseline": 0,
        "n_recent": 1,
    }
    for bad in ([0.5, float("nan")], [0.5, None]):
        with pytest.raises(ValueError, match="recent"):
            quality_drop([0.5], bad)


def test_quality_decision_triggers_on_drops_only():
    t = DriftThresholds(min_samples=2)
    drifted, reasons = decide({"eval_quality": quality_drop([0.9] * 5, [0.6] * 4)}, t)
    assert drifted and reasons == ["eval_quality: drop 0.300 > 0.150 (n=4)"]
    assert decide({"eval_quality": quality_drop([0.6] * 5, [0.9] * 4)}, t) == (False, [])


def test_min_samples_gating():
    stats = {"feedback_quality": quality_drop([0.9] * 50, [0.1, 0.2, 0.1])}
    drifted, reasons = decide(stats, DriftThresholds())
    assert not drifted and reasons == ["feedback_quality: 3 recent scores < min_samples 20, not judged"]
    assert decide(stats, DriftThresholds(min_samples=3))[0]


def test_decide_names_every_triggered_source_and_rejects_unknown_stats():
    stats = {
        "queries_category": {"tvd": 0.45, "n_recent": 30},
        "contracts_embedding": {"mmd": 0.05, "n_recent": 30},
        "eval_quality": {"drop": 0.2, "n_recent": 25},
    }
    assert decide(stats, DriftThresholds()) == (
        True,
        ["queries_category: tvd 0.450 > 0.300 (n=30)", "eval_quality: drop 0.200 > 0.150 (n=25)"],
    )
    with pytest.raises(ValueError, match="mystery"):
        decide({"mystery": {"n_recent": 40}}, DriftThresholds())
    with pytest.raises(ValueError, match="nan"):
        decide({"eval_quality": {"drop": float("nan"), "n_recent": 40}}, DriftThresholds())


@pytest.mark.parametrize(
    "field, value",
    [
        ("embedding_shift", -0.1),
        ("category_tvd", 1.5),
        ("quality_drop", math.nan),
        ("min_samples", 0),
        ("min_samples", 2.5),
        ("embedding_shift", "high"),
    ],
)
def test_threshold_validation_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        DriftThresholds(**{field: value})


def test_flatten_keys_and_json_mixes():
    rng = np.random.default_rng(8)
    ref, rec = rng.normal(size=(6, 3)), rng.normal(size=(4, 3))
    mix = category_mix(ref, rec, CATS, NAMES)
    row = flatten(
        {
            "queries_embedding": embedding_shift(ref, rec),
            "queries_category": mix,
            "feedback_quality": quality_drop([0.5], [0.4]),
        }
    )
    assert set(row) == {
        "queries_embedding.n_reference",
        "queries_embedding.n_recent",
        "queries_embedding.centroid_cosine_distance",
        "queries_embedding.mmd",
        "queries_category.n_reference",
        "queries_category.n_recent",
        "queries_category.reference_mix",
        "queries_category.recent_mix",
        "queries_category.tvd",
        "queries_category.js_divergence",
        "queries_category.top_shift",
        "feedback_quality.baseline_mean",
        "feedback_quality.recent_mean",
        "feedback_quality.drop",
        "feedback_quality.n_baseline",
        "feedback_quality.n_recent",
    }
    assert json.loads(row["queries_category.recent_mix"]) == mix["recent_mix"]
    assert all(v is None or isinstance(v, (int, float, str)) for v in row.values())
    assert flatten({"s": {"n_recent": np.int64(3)}}) == {"s.n_recent": 3}
