"""Drift statistics for the continuous loop: embedding shift, category mix and quality drop.

    stats = {"queries_embedding": embedding_shift(train_emb, query_emb),
             "queries_category": category_mix(train_emb, query_emb, category_emb, category_names),
             "feedback_quality": quality_drop(baseline_scores, recent_scores)}
    drifted, reasons = decide(stats, DriftThresholds())
    row = flatten(stats)  # one flat row for the drift table in DuckDB

Dagster-free. Embeddings are float matrices with one row per text (L2-normalised by the embedder).
An empty side is not an error: its statistics come back as None ("not enough data"), and `decide`
reports the source as not judged. Malformed input (NaN, wrong rank, mismatched widths) raises ValueError.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np


@dataclass
class DriftThresholds:
    embedding_shift: float = 0.10  # unbiased squared MMD above which recent texts count as shifted
    category_tvd: float = 0.30  # total-variation distance between category mixes (0 = same, 1 = disjoint)
    quality_drop: float = 0.15  # absolute drop of the recent mean score below the baseline mean
    min_samples: int = 20  # fewer recent items than this: the statistic is reported but cannot trigger

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{f.name} must be a finite number, got {value!r}")
            if value < 0:
                raise ValueError(f"{f.name} must be >= 0, got {value}")
        if self.category_tvd > 1:
            raise ValueError(f"category_tvd must be in [0, 1], got {self.category_tvd}")
        if not isinstance(self.min_samples, int) or self.min_samples < 1:
            raise ValueError(f"min_samples must be an integer >= 1, got {self.min_samples!r}")


def _matrix(x: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.size == 0 and a.ndim != 2:
        return a.reshape(0, 0)  # an empty list carries no width; any width is compatible with it
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-d matrix (rows = texts), got shape {a.shape}")
    if len(a) and a.shape[1] == 0:
        raise ValueError(f"{name} has rows but no columns")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return a


def _same_width(*named: tuple[str, np.ndarray]) -> None:
    widths = {name: a.shape[1] for name, a in named if a.shape[1]}
    if len(set(widths.values())) > 1:
        raise ValueError(f"embedding dimensions differ: {widths}")


def _unbiased_mmd2(x: np.ndarray, y: np.ndarray) -> float | None:
    m, n = len(x), len(y)
    if m < 2 or n < 2:
        return None  # the unbiased estimator leaves out i == j, so each side needs two items
    z = np.vstack([x, y])
    sq = (z * z).sum(axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * (z @ z.T), 0.0)  # rounding can push ~0 below 0
    np.fill_diagonal(d2, 0.0)
    pairs = np.sqrt(d2[np.triu(np.ones(d2.shape, dtype=bool), k=1)])
    if not pairs.any():
        return 0.0  # every pooled point coincides: the two samples are the same distribution
    bandwidth = float(np.median(pairs))
    if bandwidth == 0.0:
        # Mostly duplicates (e.g. two piles of repeated texts): a zero bandwidth would make the kernel
        # blind, so take the scale from the pairs that differ.
        bandwidth = float(np.median(pairs[pairs > 0]))
    k = np.exp(-d2 / (2 * bandwidth**2))
    # The kernel's diagonal is exactly 1 (d2 was zeroed there), so subtracting m or n removes i == j.
    kxx = (k[:m, :m].sum() - m) / (m * (m - 1))
    kyy = (k[m:, m:].sum() - n) / (n * (n - 1))
    kxy = k[:m, m:].mean()
    return float(kxx + kyy - 2 * kxy)


def _centroid_distance(x: np.ndarray, y: np.ndarray) -> float | None:
    if not len(x) or not len(y):
        return None
    a, b = x.mean(axis=0), y.mean(axis=0)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na < 1e-12 or nb < 1e-12:
        return None  # a centroid at the origin has no direction, so the cosine is undefined
    return float(1.0 - a @ b / (na * nb))


def embedding_shift(reference: np.ndarray, recent: np.ndarray, max_items: int = 2000, seed: int = 0) -> dict:
    """Centroid cosine distance and unbiased squared MMD (RBF kernel, median-distance bandwidth)."""
    if isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 2:
        raise ValueError(f"max_items must be an integer >= 2, got {max_items!r}")
    ref, rec = _matrix(reference, "reference"), _matrix(recent, "recent")
    _same_width(("reference", ref), ("recent", rec))
    rng = np.random.default_rng(seed)
    # The kernel matrix is quadratic in the pooled size; a seeded subsample keeps cost and result stable.
    sub_ref, sub_rec = (
        a[rng.choice(len(a), max_items, replace=False)] if len(a) > max_items else a for a in (ref, rec)
    )
    return {
        "n_reference": len(ref),
        "n_recent": len(rec),
        "centroid_cosine_distance": _centroid_distance(ref, rec),
        "mmd": _unbiased_mmd2(sub_ref, sub_rec),
    }


def _unit_rows(a: np.ndarray, name: str) -> np.ndarray:
    norms = np.linalg.norm(a, axis=1, keepdims=True)
    if (norms < 1e-12).any():
        raise ValueError(f"{name} has an all-zero row, which has no nearest category")
    return a / norms  # normalising again makes the dot product a true cosine even for sloppy embedders


def _shares(rows: np.ndarray, name: str, unit_categories: np.ndarray, names: list[str]) -> dict[str, float]:
    if not len(rows):
        return {}
    nearest = np.argmax(_unit_rows(rows, name) @ unit_categories.T, axis=1)
    counts = np.bincount(nearest, minlength=len(names))
    return {name: float(c / len(rows)) for name, c in zip(names, counts)}


def _js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        used = a > 0  # 0 * log 0 is taken as 0; m > 0 wherever a > 0
        return float((a[used] * np.log2(a[used] / m[used])).sum())

    return min(max((kl(p) + kl(q)) / 2, 0.0), 1.0)  # clip float noise so the result stays in [0, 1]


def category_mix(
    reference: np.ndarray, recent: np.ndarray, category_vectors: np.ndarray, category_names: Sequence[str]
) -> dict:
    """Share of rows nearest each category on both sides, their TVD and base-2 JS divergence."""
    names = list(category_names)
    cats = _matrix(category_vectors, "category_vectors")
    if not len(cats):
        raise ValueError("category_vectors is empty: rows need at least one category to be assigned to")
    if len(names) != len(cats):
        raise ValueError(f"{len(names)} category_names for {len(cats)} category_vectors")
    if len(set(names)) != len(names):
        raise ValueError("category_names must be unique, otherwise shares would merge silently")
    ref, rec = _matrix(reference, "reference"), _matrix(recent, "recent")
    _same_width(("reference", ref), ("recent", rec), ("category_vectors", cats))
    unit = _unit_rows(cats, "category_vectors")
    ref_mix, rec_mix = _shares(ref, "reference", unit, names), _shares(rec, "recent", unit, names)
    out = {
        "n_reference": len(ref),
        "n_recent": len(rec),
        "reference_mix": ref_mix,
        "recent_mix": rec_mix,
        "tvd": None,
        "js_divergence": None,
        "top_shift": None,
    }
    if ref_mix and rec_mix:
        p, q = np.array(list(ref_mix.values())), np.array(list(rec_mix.values()))
        moved = np.abs(p - q)
        out["tvd"] = float(moved.sum() / 2)
        out["js_divergence"] = _js_divergence(p, q)
        out["top_shift"] = names[int(np.argmax(moved))] if moved.max() > 0 else None
    return out


def _scores(values: Sequence[float], name: str) -> np.ndarray:
    a = np.asarray(list(values), dtype=np.float64)  # None becomes NaN here and is rejected below
    if a.ndim != 1:
        raise ValueError(f"{name} must be a flat list of scores, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN, None or infinite scores")
    return a


def quality_drop(baseline: Sequence[float], recent: Sequence[float]) -> dict:
    """Mean scores on both sides and the drop (baseline - recent; positive means recent is worse)."""
    base, rec = _scores(baseline, "baseline"), _scores(recent, "recent")
    base_mean = float(base.mean()) if len(base) else None
    rec_mean = float(rec.mean()) if len(rec) else None
    drop = base_mean - rec_mean if base_mean is not None and rec_mean is not None else None
    return {
        "baseline_mean": base_mean,
        "recent_mean": rec_mean,
        "drop": drop,
        "n_baseline": len(base),
        "n_recent": len(rec),
    }


# Which value of each statistic is judged, the threshold field it is judged against, and what n counts.
_RULES = (
    ("mmd", "embedding_shift", "recent items"),
    ("tvd", "category_tvd", "recent items"),
    ("drop", "quality_drop", "recent scores"),
)


def decide(stats: dict[str, dict], thresholds: DriftThresholds) -> tuple[bool, list[str]]:
    """(drifted, reasons): a source triggers when its value is above threshold on >= min_samples items."""
    drifted, reasons = False, []
    for source, s in stats.items():
        rule = next((r for r in _RULES if r[0] in s), None)
        if rule is None or "n_recent" not in s:
            raise ValueError(f"{source}: not a drift statistic (needs n_recent and one of mmd, tvd, drop)")
        metric, field, unit = rule
        value, n, limit = s[metric], s["n_recent"], getattr(thresholds, field)
        if n < thresholds.min_samples:
            reasons.append(f"{source}: {n} {unit} < min_samples {thresholds.min_samples}, not judged")
        elif value is None:
            reasons.append(f"{source}: {metric} unavailable (a side has too little data), not judged")
        elif not math.isfinite(value):
            raise ValueError(f"{source}: {metric} is {value}, which cannot be compared with a threshold")
        elif value > limit:
            drifted = True
            reasons.append(f"{source}: {metric} {value:.3f} > {limit:.3f} (n={n})")
    return drifted, reasons


def flatten(stats: dict[str, dict]) -> dict[str, float | int | str | None]:
    """One flat row: "source.key" -> value, with nested mixes written as JSON strings."""
    row: dict[str, float | int | str | None] = {}
    for source, s in stats.items():
        for key, value in s.items():
            if isinstance(value, np.generic):
                value = value.item()  # DuckDB and json both want Python scalars
            if isinstance(value, (dict, list, tuple)):
                value = json.dumps(value, sort_keys=True)
            row[f"{source}.{key}"] = value
    return row
