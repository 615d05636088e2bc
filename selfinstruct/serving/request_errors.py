"""Requests `selfinstruct serve` refuses: the error its routes turn into an HTTP status, and the UTF-8 check.

    raise RequestError("question must be a non-empty string", 422)
    utf8_text(question, "question")   # the text, or RequestError 422 for a lone surrogate

Dagster-free; the service, the ratings and the HTTP app raise and answer these.
"""

from __future__ import annotations


class RequestError(ValueError):
    """A request the service cannot answer: `status` is the HTTP status, the message names the problem."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def utf8_text(text: str, name: str) -> str:
    """`text`, refused (422) when it holds a lone surrogate (JSON's "\\ud800"): such a string is no text, and
    an answer, an inbox line or a feedback row holding it cannot be written as UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = text[exc.start : exc.end]
        raise RequestError(
            f"{name} holds {bad!r} at character {exc.start}, a lone surrogate that is no text; send UTF-8 text", 422
        ) from None
    return text
