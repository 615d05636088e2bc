"""A `dspy.LM` for any OpenAI-compatible chat endpoint: vLLM, Ollama, llama.cpp server, OpenAI itself.

    lm = openai_compatible_lm("Qwen/Qwen2.5-0.5B-Instruct", "http://localhost:8000/v1", api_key=None)
    with dspy.context(lm=lm):
        dspy.Predict("question -> answer")(question="...")

The key travels in the request's Authorization header only: it is never logged here, and neither
`repr(lm)`, `lm.dump_state()` nor DSPy's history entries carry it.
"""

from __future__ import annotations

import logging
import os
from urllib.parse import urlsplit

# litellm fetches its model price map from GitHub when it is first imported unless this is set; with
# no internet that fetch stalls the import before falling back. DSPy's native engine serves plain
# calls without litellm, but a call it cannot carry (extra headers, OPENAI_API_BASE in the
# environment, engine="litellm") imports litellm lazily, so the variable must be in place before
# then: module top, and setdefault so an operator's own choice wins.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import dspy  # noqa: E402

log = logging.getLogger(__name__)

# Local servers (vLLM, Ollama) ignore the key but OpenAI clients insist on one. Sending a placeholder
# also stops the client falling back to OPENAI_API_KEY, which would hand a real OpenAI key to
# whatever server base_url names.
PLACEHOLDER_KEY = "EMPTY"


def openai_compatible_lm(
    model: str,
    base_url: str | None = None,
    api_key: str | None = None,
    *,
    num_retries: int = 3,
    temperature: float | None = 0.0,
    max_tokens: int | None = 1024,
    **kwargs,
) -> dspy.LM:
    """A `dspy.LM` speaking the OpenAI chat-completions protocol to `base_url` (e.g. http://host:8000/v1).

    `model` is the name the server knows (vLLM's served model name, an Ollama tag, an OpenAI model id).
    With `base_url=None` it talks to OpenAI and, if `api_key` is None, reads OPENAI_API_KEY as usual.
    DSPy's response cache is off: continuous self-instruct wants a fresh sample on every call.
    Extra `kwargs` (timeout, top_p, stop, ...) go to `dspy.LM`.
    """
    # Dagster config leaves unset strings empty; "" means "not given", never a blank key or URL.
    base_url, api_key = base_url or None, api_key or None
    if base_url is not None and api_key is None:
        api_key = PLACEHOLDER_KEY
    # Always prefix: a served name may itself start with "openai/" (openai/gpt-oss-20b on vLLM) and
    # the prefix is stripped exactly once before the name goes on the wire.
    client = {"api_base": base_url} if base_url is not None else {}
    if api_key is not None:
        client["api_key"] = api_key
    # Only host and port are logged: a URL may carry credentials in its userinfo or query string.
    where = urlsplit(base_url).netloc.rpartition("@")[2] if base_url else "api.openai.com"
    log.info("OpenAI-compatible LM %s at %s", model, where)
    return dspy.LM(
        f"openai/{model}",
        cache=False,
        num_retries=num_retries,
        temperature=temperature,
        max_tokens=max_tokens,
        **client,
        **kwargs,
    )
