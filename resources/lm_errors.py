"""Errors shared by the remote LM backends (`bedrock_lm`, `openai_lm`).

`LMCallError` subclasses DSPy's `LMError`, so a caller can catch every LM failure with one
`except dspy.utils.exceptions.LMError` whether it came from DSPy's own engines or from ours.
"""

from __future__ import annotations

from dspy.utils.exceptions import LMError


class LMCallError(LMError):
    """An LM call failed for good: retries were spent, or the error cannot be cured by retrying.

    `attempts` counts the calls made (1 for an error that is never retried), `last_error` is the
    provider's last exception, and `retryable` says whether the failure was transient (throttling,
    timeouts) rather than a request the provider refused.
    """

    default_code = "lm_call_failed"

    def __init__(
        self,
        message: str,
        *,
        model: str,
        attempts: int,
        last_error: BaseException | None,
        retryable: bool,
        provider: str | None = None,
        provider_code: str | None = None,
    ):
        super().__init__(message, model=model, provider=provider, provider_code=provider_code)
        self.attempts = attempts
        self.last_error = last_error
        self.retryable = retryable
