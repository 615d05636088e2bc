"""What `selfinstruct serve` is set up with: retrieval and prompt (as benchmark_scores), A/B share, polling, limits.

    settings = ServeSettings(candidate_share=0.1)   # ValueError naming the field when a value is out of range

Dagster-free.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from selfinstruct.answering.windows import N_WINDOWS


@dataclass
class ServeSettings:
    k: int = 3  # chunks retrieved per question (benchmark_scores' k)
    n_windows: int = N_WINDOWS  # candidate windows BM25 keeps (benchmark_scores' n_windows; 0 keeps all)
    prompt: str = "windows"  # what the model reads: the candidate windows or the whole chunks (benchmark's prompt)
    # "No such clause." wins unless the best window beats it by this: the fallback for a model whose own abstain
    # margin (chosen by benchmark_scores on train-split questions) is not recorded; see Service's `margin_for`
    margin: float = 0.0
    candidate_share: float = 0.0  # share of requests the candidate arm answers (0: A/B off)
    poll_s: float = 1.0  # how often the served pointer (and the candidate) is re-read
    max_question_chars: int = 4000  # the query inbox's limit
    max_body_bytes: int = 64_000  # request bodies above it get 413
    flush_s: float = 0.5  # the query log is published as one inbox file per this many seconds of traffic

    def __post_init__(self):
        if self.k < 1 or self.n_windows < 0:
            raise ValueError(f"k must be >= 1 and n_windows >= 0, got k={self.k}, n_windows={self.n_windows}")
        if self.prompt not in ("windows", "chunks"):
            raise ValueError(f"prompt must be 'windows' or 'chunks' (as benchmark_scores), got {self.prompt!r}")
        if not isinstance(self.margin, (int, float)) or math.isnan(self.margin):
            raise ValueError(f"margin must be a number (-inf: always quote), got {self.margin!r}")
        if not 0.0 <= self.candidate_share <= 1.0:
            raise ValueError(f"candidate_share must lie in [0, 1] (0: A/B off), got {self.candidate_share!r}")
        if self.poll_s <= 0 or self.flush_s <= 0:
            raise ValueError(f"poll_s and flush_s must be > 0 seconds, got {self.poll_s}, {self.flush_s}")
        if self.max_question_chars < 1 or self.max_body_bytes < 1024:
            raise ValueError("max_question_chars must be >= 1 and max_body_bytes >= 1024")
