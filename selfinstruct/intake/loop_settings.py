"""Knobs of the continuous loop's sensors, read from the environment at each tick (never at import).

| variable | default | meaning |
|---|---|---|
| SELFINSTRUCT_FEEDBACK_MIN_ROWS | 20 | new valid feedback rows that trigger a refresh |
| SELFINSTRUCT_FEEDBACK_MAX_WAIT_S | 3600 | ... or the age of the oldest waiting row that does |
| SELFINSTRUCT_DRIFT_COOLDOWN_S | 21600 | least time between two drift-triggered regenerations |

Each is validated by `selfinstruct.core.settings` (a whole number >= 1; finite seconds >= 0): a bad value
raises its `SettingsError` naming the variable, the value and an example, so a sensor tick fails loudly
instead of never firing.
"""

from __future__ import annotations

from dataclasses import dataclass

from selfinstruct.core import settings


@dataclass(frozen=True)
class LoopSettings:
    feedback_min_rows: int = 20
    feedback_max_wait_s: float = 3600.0
    drift_cooldown_s: float = 6 * 3600.0

    @classmethod
    def from_env(cls) -> LoopSettings:
        return cls(
            feedback_min_rows=settings.get("SELFINSTRUCT_FEEDBACK_MIN_ROWS"),
            feedback_max_wait_s=settings.get("SELFINSTRUCT_FEEDBACK_MAX_WAIT_S"),
            drift_cooldown_s=settings.get("SELFINSTRUCT_DRIFT_COOLDOWN_S"),
        )
