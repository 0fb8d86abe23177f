"""Reading the input clip from, and writing outputs to, S3 (any endpoint) on a worker.

Locations are `s3://BUCKET/KEY`. The endpoint comes from `POSER_S3_ENDPOINT_URL` (unset: AWS),
credentials and region from the usual AWS environment variables.
"""

from __future__ import annotations

import mimetypes
import os
from pathlib import Path

from tasks.files import atomic_path

REMOTE_SCHEME = "s3://"


def is_remote(location: str) -> bool:
    return location.startswith(REMOTE_SCHEME)


def download(location: str, target: Path) -> Path:
    """Copy the object at `location` to `target`, atomically."""
    bucket, key = _split(location)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as partial:
        _client().download_file(bucket, key, str(partial))
    return target


def upload(path: Path, location: str) -> None:
    """Store the file at `location`, typed by its extension, downloading as an attachment."""
    bucket, key = _split(location)
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    extra = {"ContentType": content_type, "ContentDisposition": f'attachment; filename="{path.name}"'}
    _client().upload_file(str(path), bucket, key, ExtraArgs=extra)


def _split(location: str) -> tuple[str, str]:
    bucket, _, key = location[len(REMOTE_SCHEME) :].partition("/")
    if not bucket or not key:
        raise ValueError(f"Not an object location: {location}")
    return bucket, key


def _client():
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=os.environ.get("POSER_S3_ENDPOINT_URL") or None,
        region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
    )
