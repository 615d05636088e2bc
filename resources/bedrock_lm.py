"""A DSPy LM that calls Amazon Bedrock's Converse API through boto3.

    lm = BedrockConverseLM("anthropic.claude-3-haiku-20240307-v1:0", region="us-east-1", max_tokens=512)
    with dspy.context(lm=lm):
        dspy.Predict("question -> answer")(question="...")

Credentials come from boto3's standard chain (env vars, profile, instance role); this class never
receives, stores or logs them. Throttling and timeouts are retried here with exponential backoff and
jitter; everything else fails at once as `LMCallError`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import dspy
from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, ReadTimeoutError

from resources.lm_errors import LMCallError

log = logging.getLogger(__name__)

RETRYABLE_CODES = frozenset(
    {
        "ThrottlingException",
        "ServiceUnavailableException",
        "ModelTimeoutException",
        "ModelNotReadyException",
        "InternalServerException",
    }
)
_STOP_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length"}
# Keys DSPy or its callers may pass that have no Converse counterpart and must not reach the wire.
_IGNORED_KWARGS = frozenset({"rollout_id", "cache", "num_retries", "n", "num_generations"})


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for part in content or []:
        if isinstance(part, dict) and part.get("type") == "text":
            parts.append(part["text"])
        else:
            kind = part.get("type") if isinstance(part, dict) else type(part).__name__
            raise ValueError(f"BedrockConverseLM sends text only; got a {kind!r} content part")
    return "".join(parts)


def to_converse(messages: list[dict]) -> tuple[list[dict], list[dict]]:
    """Split OpenAI-style chat messages into Converse's (system, messages)."""
    system, turns = [], []
    for msg in messages:
        role, text = msg.get("role"), _text_of(msg.get("content"))
        if role in ("system", "developer"):
            system.append({"text": text})
        elif role in ("user", "assistant"):
            # Converse rejects two turns in a row from one role; joining them keeps every block.
            if turns and turns[-1]["role"] == role:
                turns[-1]["content"].append({"text": text})
            else:
                turns.append({"role": role, "content": [{"text": text}]})
        else:
            raise ValueError(f"BedrockConverseLM cannot send a {role!r} message (only system/user/assistant)")
    if not turns or turns[0]["role"] != "user":
        raise ValueError("Converse needs the first non-system message to come from the user")
    return system, turns


def inference_config(kwargs: dict) -> dict:
    """OpenAI-style generation options as Converse inferenceConfig (None values dropped)."""
    stop = kwargs.get("stop")
    cfg = {
        "maxTokens": kwargs.get("max_tokens") or kwargs.get("max_completion_tokens"),
        "temperature": kwargs.get("temperature"),
        "topP": kwargs.get("top_p"),
        "stopSequences": [stop] if isinstance(stop, str) else stop,
    }
    return {key: val for key, val in cfg.items() if val is not None}


class BedrockConverseLM(dspy.BaseLM):
    """`dspy.BaseLM` over bedrock-runtime Converse, with its own throttling retries."""

    def __init__(
        self,
        model: str,
        region: str | None = None,
        *,
        temperature: float | None = 0.0,
        max_tokens: int | None = 1024,
        max_attempts: int = 6,
        base_delay: float = 1.0,
        max_delay: float = 30.0,
        read_timeout: float = 120.0,
        client: Any = None,
        sleep: Callable[[float], None] = time.sleep,
        cache: bool = False,
        **kwargs,
    ):
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        kwargs.pop("num_retries", None)  # load_state hands it back; max_attempts is the source of truth
        super().__init__(
            model=model,
            temperature=temperature,
            max_tokens=max_tokens,
            cache=cache,
            num_retries=max_attempts - 1,
            **kwargs,
        )
        self.region = region
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.read_timeout = read_timeout
        self._sleep = sleep
        self._client = client
        self._client_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"BedrockConverseLM(model={self.model!r}, region={self.region!r}, max_attempts={self.max_attempts})"

    @property
    def client(self):
        with self._client_lock:
            if self._client is None:
                import boto3
                from botocore.config import Config

                # botocore's own retries are off so that max_attempts means what it says.
                self._client = boto3.client(
                    "bedrock-runtime",
                    region_name=self.region,
                    config=Config(retries={"mode": "standard", "max_attempts": 1}, read_timeout=self.read_timeout),
                )
            return self._client

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt `attempt` (0-based): doubling, +0-50% jitter, capped."""
        return min(self.max_delay, self.base_delay * 2**attempt * (1 + 0.5 * random.random()))

    def forward(self, prompt=None, messages=None, **kwargs):
        # DSPy hands forward() only the per-call kwargs; the constructor's defaults are ours to merge.
        merged = {**self.kwargs, **kwargs}
        system, turns = to_converse(messages or [{"role": "user", "content": prompt}])
        request = {"modelId": self.model, "messages": turns}
        if system:
            request["system"] = system
        if cfg := inference_config(merged):
            request["inferenceConfig"] = cfg
        unknown = sorted(
            set(merged) - set(_IGNORED_KWARGS) - {"max_tokens", "max_completion_tokens", "temperature", "top_p", "stop"}
        )
        if unknown:
            log.debug("BedrockConverseLM ignores options with no Converse field: %s", unknown)
        replies = [self._converse(request) for _ in range(merged.get("n") or 1)]
        return self._as_openai(replies)

    async def aforward(self, prompt=None, messages=None, **kwargs):
        return await asyncio.to_thread(self.forward, prompt=prompt, messages=messages, **kwargs)

    def _converse(self, request: dict) -> dict:
        for attempt in range(1, self.max_attempts + 1):
            try:
                return self.client.converse(**request)
            except (ClientError, BotoCoreError) as exc:
                code = exc.response["Error"].get("Code") if isinstance(exc, ClientError) else type(exc).__name__
                retryable = code in RETRYABLE_CODES or isinstance(exc, (ReadTimeoutError, ConnectTimeoutError))
                if not retryable or attempt == self.max_attempts:
                    why = (
                        f"still failing after {attempt} attempts; last error {code}"
                        if retryable
                        else f"failed with {code}, which is not retryable"
                    )
                    raise LMCallError(
                        f"Bedrock {why}: {exc}",
                        model=self.model,
                        attempts=attempt,
                        last_error=exc,
                        retryable=retryable,
                        provider="bedrock",
                        provider_code=code,
                    ) from exc
                delay = self.backoff(attempt - 1)
                log.warning(
                    "Bedrock %s on %s (attempt %d/%d); retrying in %.1fs",
                    code,
                    self.model,
                    attempt,
                    self.max_attempts,
                    delay,
                )
                self._sleep(delay)
        raise AssertionError("unreachable")

    def _as_openai(self, replies: list[dict]) -> SimpleNamespace:
        """The OpenAI chat-completion shape DSPy reads: choices[i].message.content, usage, model."""
        choices, usage = [], {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        for index, reply in enumerate(replies):
            blocks = reply["output"]["message"]["content"]
            text = "".join(block["text"] for block in blocks if "text" in block)
            reason = reply.get("stopReason")
            choices.append(
                SimpleNamespace(
                    index=index,
                    finish_reason=_STOP_REASONS.get(reason, reason),
                    message=SimpleNamespace(role="assistant", content=text, tool_calls=None),
                )
            )
            u = reply.get("usage", {})
            usage["prompt_tokens"] += u.get("inputTokens", 0)
            usage["completion_tokens"] += u.get("outputTokens", 0)
            usage["total_tokens"] += u.get("totalTokens", 0)
        return SimpleNamespace(model=self.model, choices=choices, usage=usage)

    def dump_state(self) -> dict[str, Any]:
        return {
            **super().dump_state(),
            "region": self.region,
            "max_attempts": self.max_attempts,
            "base_delay": self.base_delay,
            "max_delay": self.max_delay,
            "read_timeout": self.read_timeout,
        }
