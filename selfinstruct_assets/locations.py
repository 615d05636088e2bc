"""Where an upstream artifact lives, read from the metadata its producing asset recorded.

    program = recorded_path(context.instance, "rag_program")         # the folder/file the producer published
    adapters = trained_adapters(context.instance)                    # {"sft": Path(...), "dpo": Path(...)}

A consumer never rebuilds a path by convention: if the producer moves its output, consumers follow.
"""

from pathlib import Path

import dagster as dg

from selfinstruct_core.artifacts import ADAPTER_METHODS


def recorded_path(instance: dg.DagsterInstance, asset: str, key: str = "path") -> Path | None:
    """The `key` metadata of `asset`'s latest materialisation as a Path; None if it was never recorded."""
    event = instance.get_latest_materialization_event(dg.AssetKey(asset))
    entry = event.asset_materialization.metadata.get(key) if event and event.asset_materialization else None
    return Path(entry.value) if entry is not None and entry.value else None


def required_path(instance: dg.DagsterInstance, asset: str, key: str = "path") -> Path:
    """As `recorded_path`, but a missing artifact fails the step with what to materialise."""
    path = recorded_path(instance, asset, key)
    if path is None:
        raise dg.Failure(f"{asset} has recorded no {key!r} yet; materialise {asset} first")
    return path


def trained_adapters(instance: dg.DagsterInstance) -> dict[str, Path]:
    """method -> adapter folder, for each `<method>_adapter` whose latest run trained one (skipped ones left out)."""
    found = {m: recorded_path(instance, f"{m}_adapter", "adapter_path") for m in ADAPTER_METHODS}
    return {m: p for m, p in found.items() if p is not None and p.is_dir()}
