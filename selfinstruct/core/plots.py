"""Small PNG charts as Markdown, for Dagster metadata (the UI renders `![..](data:image/png;base64,..)`)."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence


def _md_png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    return f"![chart](data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()})"


def line_chart_md(points: Sequence[tuple[float, float]], title: str, xlabel: str = "step", ylabel: str = "loss") -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3))
    if points:
        xs, ys = zip(*points)
        ax.plot(xs, ys, marker=".")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    return _md_png(fig)


def _yerr(values: Sequence[float | None], bounds: Sequence[tuple]) -> list[list[float]]:
    """matplotlib's (below, above) error lengths from (low, high) bounds; 0 where a bound is missing."""
    below = [v - lo if v is not None and lo is not None else 0.0 for v, (lo, _) in zip(values, bounds)]
    above = [hi - v if v is not None and hi is not None else 0.0 for v, (_, hi) in zip(values, bounds)]
    return [below, above]


def bar_chart_md(
    labels: Sequence[str],
    series: dict[str, Sequence[float]],
    title: str,
    errors: dict[str, Sequence[tuple]] | None = None,
) -> str:
    """Grouped bars: one group per label, one bar per series (e.g. CUAD match, detection F1); `errors` gives
    (low, high) per bar of a series, drawn as error bars (the 95 % intervals)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3))
    width = 0.8 / max(1, len(series))
    for i, (name, values) in enumerate(series.items()):
        bounds = (errors or {}).get(name)
        ax.bar(
            [x + i * width for x in range(len(labels))],
            [v or 0 for v in values],
            width,
            label=name,
            yerr=_yerr(values, bounds) if bounds else None,
            capsize=2,
        )
    ax.set_xticks([x + width * (len(series) - 1) / 2 for x in range(len(labels))], labels, rotation=20)
    ax.set(title=title, ylim=(0, 1))
    ax.legend(fontsize=7)
    return _md_png(fig)
