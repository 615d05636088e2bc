"""Where an upstream artifact lives, read from the metadata its producing asset recorded.

    program = recorded_path(context.instance, "rag_program")         # the folder/file the producer published
    adapters = trained_adapters(context.instance)                    # {"sft": Path(...), "dpo": Path(...)}

A consumer never rebuilds a path by convention: if the producer moves its output, consumers follow. A home
copied to another folder finds its artifacts under the new home (`core.paths.relocated`). A
producer that published to S3 (SELFINSTRUCT_ARTIFACTS=s3://...) records the version's s3:// URI; consumers get
a local, sha256-checked copy of exactly that version from the artifact store's cache.
"""

from pathlib import Path

import dagster as dg

from selfinstruct.core.artifacts import ADAPTER_METHODS
from selfinstruct.core.paths import project_home, relocated
from selfinstruct.core.s3_uri import is_s3_uri

PAGE = 20  # materialisations read per query while looking back past skipped runs


def recorded_uri(instance: dg.DagsterInstance, asset: str, key: str = "path") -> str | None:
    """The raw `key` metadata (a folder, a file or an s3:// URI) of `asset`'s newest materialisation recording it."""
    cursor = None
    while True:
        page = instance.fetch_materializations(dg.AssetKey(asset), limit=PAGE, cursor=cursor)
        for record in page.records:
            entry = record.asset_materialization.metadata.get(key) if record.asset_materialization else None
            if entry is not None and entry.value:
                return str(entry.value)
        if not page.has_more:
            return None
        cursor = page.cursor


def local_copy(uri: str) -> Path:
    """`uri` as a local path: itself for a local artifact, else the store's checked download of that version."""
    if not is_s3_uri(uri):
        return relocated(Path(uri), project_home())  # a home copied elsewhere still finds its artifacts
    from resources.s3 import ArtifactsResource

    store = ArtifactsResource().store()
    return store.fetch_file(uri) if Path(uri.rstrip("/")).suffix else store.fetch_dir(uri)


def recorded_path(instance: dg.DagsterInstance, asset: str, key: str = "path") -> Path | None:
    """The `key` metadata of `asset`'s latest materialisation that recorded one, as a Path; None if none did.

    A run that skipped (e.g. DPO with too few pairs) records no path and leaves the last published folder in
    place, so the newest materialisation that has the key is the one that names the current artifact.
    """
    uri = recorded_uri(instance, asset, key)
    return local_copy(uri) if uri else None


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
