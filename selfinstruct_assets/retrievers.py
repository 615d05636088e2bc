"""The retriever an asset should use: the fine-tuned one when `retriever_model` published it, hybrid otherwise.

    retrieve, which = retriever_for(context.instance, embedder, chroma)
    passages = retrieve("What is the governing law?", contract_id, 3)

The ranking itself lives in `selfinstruct.retrieval.retriever`; this module only reads the run record.
"""

from collections.abc import Callable
from pathlib import Path

import dagster as dg

from resources.project import ChromaResource, EmbedderResource
from selfinstruct.retrieval.retriever import make_retriever
from selfinstruct_assets.locations import recorded_path


def trained_retriever(instance: dg.DagsterInstance) -> tuple[Path | None, str]:
    """(folder of the fine-tuned retriever, why) from retriever_model's latest materialisation; None when there
    is none or it fell back to the packaged model."""
    latest = instance.get_latest_materialization_event(dg.AssetKey("retriever_model"))
    meta = latest.asset_materialization.metadata if latest and latest.asset_materialization else {}
    if "fallback" in meta and meta["fallback"].value:
        return None, "retriever_model fell back to the packaged model"
    path = recorded_path(instance, "retriever_model")
    if path is None or not path.exists():
        return None, "retriever_model has published no model"
    return path, f"fine-tuned: {path}"


def retriever_for(
    instance: dg.DagsterInstance, embedder: EmbedderResource, chroma: ChromaResource
) -> tuple[Callable[[str, str, int], list[str]], str]:
    """(retrieve, which): the fine-tuned retriever if `retriever_model` published one, else hybrid."""
    path, why = trained_retriever(instance)
    if path is None:
        return make_retriever(embedder, chroma), f"hybrid ({why})"
    return make_retriever(embedder, chroma, model_dir=path), why
