"""S3 through dagster-aws: every S3 client of the project (artifact store, inboxes, CUAD) is made by its S3Resource.

    {"artifacts": ArtifactsResource(), "inbox": InboxResource()}      # both resolve their location at run time

    @dg.asset
    def sft_adapter(artifacts: ArtifactsResource):
        uri = artifacts.store().publish_dir(build, adapter_dir("", "sft"))   # record uri in the metadata

    open_cuad_source(uri, cache, s3_client=client_for(uri))              # None unless uri is s3://

`dagster_aws.s3.S3Resource` is used as shipped, with boto3's environment: `AWS_ENDPOINT_URL_S3` (MinIO, moto,
LocalStack), `AWS_REGION`, `AWS_PROFILE` or keys, read when the client is made, that is when a step runs. So
one set of variables serves the store, the inboxes and CUAD, with no project-specific name to learn.
Why not a nested `s3: S3Resource` field: Dagster then treats the holder as a resource needing setup, and
`build_sensor_context(resources=...)` without `with` fails, as the inbox sensors' tests call it; and importing
dagster-aws costs ~2.5 s, paid here only by a step that reads an s3:// location.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from selfinstruct.core import settings
from selfinstruct.core.artifact_store import ArtifactStore, open_store
from selfinstruct.core.paths import project_home
from selfinstruct.core.s3_uri import is_s3_uri


def s3_client(s3: dg.ConfigurableResource | None = None):
    """A boto3 S3 client from `s3` (a configured dagster_aws.s3.S3Resource), else from `S3Resource()`."""
    if s3 is None:
        from dagster_aws.s3 import S3Resource

        s3 = S3Resource()
    return s3.get_client()


def client_for(uri: str, s3: dg.ConfigurableResource | None = None):
    """The S3 client to read `uri` with, or None when it is not an s3:// URI (no client is made then)."""
    return s3_client(s3) if is_s3_uri(str(uri)) else None


def artifacts_location(location: str = "") -> str:
    """`location`, else SELFINSTRUCT_ARTIFACTS (a folder or s3://BUCKET/PREFIX), else SELFINSTRUCT_HOME."""
    return location or settings.get("SELFINSTRUCT_ARTIFACTS") or str(project_home())


class ArtifactsResource(dg.ConfigurableResource):
    """Where adapters, compiled programs, served snapshots and datasets are published: a folder or S3 prefix.

    Empty `location` means SELFINSTRUCT_ARTIFACTS, else the home folder (today's layout), read when a step runs.
    """

    location: str = ""
    cache_dir: str = ""  # where S3 artifacts are downloaded; empty = <SELFINSTRUCT_HOME>/cache/artifacts

    def store(self) -> ArtifactStore:
        """The store for this run (made at each call: the environment may differ between runs of one process).
        An S3 store is checked first (its bucket exists and may be used), so a step fails before its work."""
        location = artifacts_location(self.location)
        cache = Path(self.cache_dir) if self.cache_dir else project_home() / "cache" / "artifacts"
        store = open_store(location, client_for(location), cache)
        from selfinstruct.core.s3_store import S3Store  # botocore: imported where an s3:// store is opened

        if isinstance(store, S3Store):
            from_env = not self.location or self.location == settings.get("SELFINSTRUCT_ARTIFACTS")
            store.check("SELFINSTRUCT_ARTIFACTS" if from_env else "ArtifactsResource.location")
        return store

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # Resources are set up when a run starts (in process: before its first step), so an S3 store that is
        # missing or unreachable fails the run there, not after an adapter has trained for an hour.
        if is_s3_uri(artifacts_location(self.location)):
            self.store()
