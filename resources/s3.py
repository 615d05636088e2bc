"""S3 through dagster-aws: one `S3Resource` gives its boto3 client to the artifact store, the inboxes and CUAD.

    s3 = S3Resource()                                   # dagster_aws.s3; endpoint, region, keys: boto3's environment
    {"s3": s3, "artifacts": ArtifactsResource(s3=s3), "inbox": InboxResource(s3=s3)}

    @dg.asset
    def sft_adapter(artifacts: ArtifactsResource):
        uri = artifacts.store().publish_dir(build, adapter_dir("", "sft"))   # record uri in the metadata

`S3Resource` is used as dagster-aws ships it: boto3 reads `AWS_ENDPOINT_URL_S3` (MinIO, moto, LocalStack),
`AWS_REGION` and the credential chain when the client is made, that is when a step runs, so the same
definitions reach AWS or a local S3 without a project-specific variable. The `s3` fields are typed as any
resource and filled lazily because importing dagster-aws costs ~2.5 s: a deployment that never names an
s3:// location never pays it.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
from pydantic import PrivateAttr

from selfinstruct_core.artifact_store import ArtifactStore, open_store
from selfinstruct_core.paths import project_home


def s3_client(s3: dg.ConfigurableResource | None = None):
    """A boto3 S3 client from `s3` (a dagster_aws.s3.S3Resource), else from a default `S3Resource()`."""
    if s3 is None:
        from dagster_aws.s3 import S3Resource

        s3 = S3Resource()
    return s3.get_client()


def client_for(uri: str, s3: dg.ConfigurableResource | None = None):
    """The S3 client to read `uri` with, or None when it is not an s3:// URI (no client is made then)."""
    return s3_client(s3) if str(uri).startswith("s3://") else None


def artifacts_location(location: str = "") -> str:
    """`location`, else SELFINSTRUCT_ARTIFACTS (a folder or s3://BUCKET/PREFIX), else SELFINSTRUCT_HOME."""
    return location or os.environ.get("SELFINSTRUCT_ARTIFACTS") or str(project_home())


class ArtifactsResource(dg.ConfigurableResource):
    """Where adapters, compiled programs, served snapshots and datasets are published: a folder or S3 prefix.

    Empty `location` means SELFINSTRUCT_ARTIFACTS, else the home folder (today's layout), read when a step runs.
    """

    location: str = ""
    s3: dg.ConfigurableResource | None = None  # a dagster_aws.s3.S3Resource; None = S3Resource() when needed
    cache_dir: str = ""  # where S3 artifacts are downloaded; empty = <SELFINSTRUCT_HOME>/cache/artifacts
    _store: ArtifactStore | None = PrivateAttr(default=None)

    def store(self) -> ArtifactStore:
        if self._store is None:
            location = artifacts_location(self.location)
            cache = Path(self.cache_dir) if self.cache_dir else project_home() / "cache" / "artifacts"
            self._store = open_store(location, client_for(location, self.s3), cache)
        return self._store
