"""Knobs of the continuous loop's sensors, read from the environment at each tick (never at import).

| variable | default | meaning |
|---|---|---|
| SELFINSTRUCT_FEEDBACK_MIN_ROWS | 20 | new valid feedback rows that trigger a refresh |
| SELFINSTRUCT_FEEDBACK_MAX_WAIT_S | 3600 | ... or the age of the oldest waiting row that does |
| SELFINSTRUCT_DRIFT_COOLDOWN_S | 21600 | least time between two drift-triggered regenerations |
"""

from __future__ import annotations

import os
from dataclasses import dataclass


def _number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number; unset it or give e.g. {default:g}") from None
    if value < 0:
        raise ValueError(f"{name}={raw!r} must not be negative")
    return value


@dataclass(frozen=True)
class LoopSettings:
    feedback_min_rows: int = 20
    feedback_max_wait_s: float = 3600.0
    drift_cooldown_s: float = 6 * 3600.0

    @classmethod
    def from_env(cls) -> "LoopSettings":
        return cls(feedback_min_rows=max(1, int(_number("SELFINSTRUCT_FEEDBACK_MIN_ROWS", cls.feedback_min_rows))),
                   feedback_max_wait_s=_number("SELFINSTRUCT_FEEDBACK_MAX_WAIT_S", cls.feedback_max_wait_s),
                   drift_cooldown_s=_number("SELFINSTRUCT_DRIFT_COOLDOWN_S", cls.drift_cooldown_s))
