"""Training inputs and the adapter on S3, for a GPU node that shares no disk with the orchestrator.

    python -m training sft --config s3://bucket/runs/abc/sft.json

`stage_config` downloads every s3:// value of a config (the dataset, a base model or start adapter
prefix) into a scratch folder and points `out_dir` there too; `upload_dir` sends the trained adapter to the
config's S3 `out_dir` only after training published it locally, so a failed or killed run writes nothing
under that prefix. boto3 takes its endpoint and credentials from the environment (the ECS task role,
AWS_REGION, AWS_ENDPOINT_URL).
"""

from __future__ import annotations

import json
import posixpath
from pathlib import Path

from selfinstruct.core.s3_uri import is_s3_uri, split_s3_uri

PATH_KEYS = ("base_model", "dataset", "out_dir", "start_adapter")
# Written last: a loader opens adapter_config.json first, so a reader never finds a config without weights.
LAST_FILE = "adapter_config.json"


def client():
    import boto3

    return boto3.client("s3")


def read_json(s3, uri: str) -> dict:
    bucket, key = split_s3_uri(uri)
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        raise FileNotFoundError(f"{uri}: no such object on S3") from None
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{uri}: not valid JSON ({exc.msg})") from None


def download(s3, uri: str, dest: Path) -> Path:
    """The object at `uri` as the file `dest`, or every object under the prefix `uri/` into the folder `dest`."""
    bucket, key = split_s3_uri(uri)
    prefix = key.rstrip("/") + "/"
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    keys = [obj["Key"] for page in pages for obj in page.get("Contents", [])]
    if not keys:
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            s3.download_file(bucket, key, str(dest))
        except Exception as exc:  # botocore's 404 is a ClientError; name the URI rather than the HTTP code
            raise FileNotFoundError(f"{uri}: no such object or prefix on S3 ({exc})") from None
        return dest
    for name in keys:
        target = dest / name[len(prefix) :]
        target.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(bucket, name, str(target))
    return dest


def upload_dir(s3, folder: Path, uri: str) -> None:
    """Every file under `folder` to the prefix `uri/`, adapter_config.json last."""
    bucket, key = split_s3_uri(uri)
    files = sorted((p for p in Path(folder).rglob("*") if p.is_file()), key=lambda p: (p.name == LAST_FILE, str(p)))
    for path in files:
        s3.upload_file(str(path), bucket, posixpath.join(key.rstrip("/"), path.relative_to(folder).as_posix()))


def stage_config(s3, config: dict, config_uri: str, scratch: Path) -> tuple[dict, str | None]:
    """(config with local paths, S3 out_dir or None): s3:// values downloaded into `scratch`.

    A relative value is taken from the config's S3 folder, as a local config's relative paths are from its folder;
    an absolute local path (a base model baked into the image) is kept.
    """
    bucket, key = split_s3_uri(config_uri, "training config")
    staged, out_uri = dict(config), None
    for name in PATH_KEYS:
        value = config.get(name)
        if not value:
            continue
        if not is_s3_uri(value) and not str(value).startswith("/"):
            value = f"s3://{bucket}/{posixpath.normpath(posixpath.join(posixpath.dirname(key), str(value)))}"
        if not is_s3_uri(value):
            staged[name] = Path(value)
        elif name == "out_dir":
            out_uri, staged[name] = value.rstrip("/"), scratch / "out"
        else:
            staged[name] = download(s3, value, scratch / name)
    return staged, out_uri


def upload_file(s3, path: Path, uri: str) -> str:
    bucket, key = split_s3_uri(uri)
    s3.upload_file(str(path), bucket, key)
    return uri


def put_json(s3, uri: str, value) -> str:
    bucket, key = split_s3_uri(uri)
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(value, indent=2).encode())
    return uri
