"""Dagster resources for the project's home folder, the base model and external systems (embedder, Chroma).

Every path is resolved when a step runs, never at import: `SELFINSTRUCT_HOME` (default
`./.selfinstruct`) holds the Dagster instance, the DuckDB file, Chroma data, caches and artifacts.
"""

from pathlib import Path

import dagster as dg
from pydantic import PrivateAttr

from resources.chroma_store import ChromaStore, make_client
from resources.embedders import Embedder, HashingEmbedder, MiniLMEmbedder, TitanEmbedder, check_titan
from selfinstruct.core.base_model import locate_base_model
from selfinstruct.core.paths import project_home


class ProjectHome(dg.ConfigurableResource):
    """The folder holding caches and artifacts; empty `path` means SELFINSTRUCT_HOME."""

    path: str = ""

    def root(self) -> Path:
        root = Path(self.path).resolve() if self.path else project_home()
        root.mkdir(parents=True, exist_ok=True)
        return root

    def subdir(self, name: str) -> Path:
        d = self.root() / name
        d.mkdir(parents=True, exist_ok=True)
        return d


class BaseModelResource(dg.ConfigurableResource):
    """The local model folder adapters are trained on and local LMs run: `path`, else packaged SmolLM2."""

    path: str = ""  # a local HF model folder (SELFINSTRUCT_BASE_MODEL); empty = SmolLM2, dequantised once
    home: str = ""  # where the dequantised SmolLM2 is kept (under models/); empty = SELFINSTRUCT_HOME

    def dir(self) -> Path:
        return locate_base_model(self.path, Path(self.home).resolve() if self.home else project_home())


class EmbedderResource(dg.ConfigurableResource):
    """Text embedder: `minilm` (packaged all-MiniLM-L6-v2, default), `titan` (Bedrock) or `hashing` (tests)."""

    backend: str = "minilm"
    batch_size: int = 32
    precision: str = "auto"  # minilm: auto (bfloat16 where the CPU has native bf16), float32 or bfloat16
    bedrock_model_id: str = "amazon.titan-embed-text-v2:0"
    aws_region: str = ""
    _embedder: Embedder | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # Set up when a run starts (in process: before its first step): Titan without a region or credentials
        # fails the run there, in one sentence, not at the first chunk of a step.
        if self.backend == "titan":
            check_titan(self.aws_region or None)

    def get(self) -> Embedder:
        if self._embedder is None:
            if self.backend == "minilm":
                self._embedder = MiniLMEmbedder(batch_size=self.batch_size, precision=self.precision)
            elif self.backend == "titan":
                self._embedder = TitanEmbedder(self.bedrock_model_id, region=self.aws_region or None)
            elif self.backend == "hashing":
                self._embedder = HashingEmbedder()
            else:
                raise ValueError(f"embedder backend must be minilm, titan or hashing, got {self.backend!r}")
        return self._embedder


class ChromaResource(dg.ConfigurableResource):
    """Chroma: `embedded` PersistentClient under the home folder (default) or an `http` Chroma server."""

    mode: str = "embedded"
    path: str = ""
    host: str = "localhost"
    port: int = 8000
    ssl: bool = False

    def store(self, embedder: Embedder) -> ChromaStore:
        path = self.path or str(project_home() / "chroma")
        return ChromaStore(make_client(self.mode, path, self.host, self.port, self.ssl), embedder)


class InboxResource(dg.ConfigurableResource):
    """Inboxes where feedback, query logs and new contracts arrive: a local folder or an `s3://` prefix.

    Empty `root` means SELFINSTRUCT_INBOX, else `<SELFINSTRUCT_HOME>/inbox`; each kind is a sub-folder. An s3://
    root is read with a client from dagster-aws's S3Resource, as the artifact store's is (resources/s3.py).
    """

    root: str = ""

    def get(self, kind: str):
        from resources.s3 import client_for
        from selfinstruct.core.inbox import inbox_for, inbox_root

        root = self.root or inbox_root()
        return inbox_for(kind, root, s3_client=client_for(root))
