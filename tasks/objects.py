"""Reading the input clip from, and writing outputs and task results to, S3 (any endpoint) on
a worker.

Locations are `s3://BUCKET/KEY`. The endpoint comes from `POSER_S3_ENDPOINT_URL` (unset: AWS),
credentials and region from the usual AWS environment variables.
"""

from __future__ import annotations

import contextlib
import mimetypes
import os
from pathlib import Path
from typing import TYPE_CHECKING, cast

from tasks.files import atomic_path

if TYPE_CHECKING:
    from prefect_aws import S3Bucket

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


def result_storage(beside: str) -> S3Bucket:
    """Prefect result storage in the bucket of the location `beside`: a saved `prefect-aws` S3
    bucket block, `poser-results-BUCKET` in the Prefect UI, on the endpoint and with the
    credentials of the clip and the outputs (from this worker's environment; the block holds
    no secret). It is created, or updated, from those settings when they differ."""
    from prefect_aws import AwsClientParameters, AwsCredentials, S3Bucket

    bucket, _ = _split(beside)
    name = "poser-results-" + bucket.replace(".", "-")
    with contextlib.suppress(ValueError):  # not saved yet
        saved = cast("S3Bucket", S3Bucket.load(name))  # a sync call: this runs in a sync flow
        if _same_place(saved, bucket):
            return saved
    credentials = AwsCredentials(
        region_name=_region(), aws_client_parameters=AwsClientParameters(endpoint_url=_endpoint_url())
    )
    storage = S3Bucket(bucket_name=bucket, credentials=credentials)
    storage.save(name, overwrite=True)
    return storage


def _same_place(storage: S3Bucket, bucket: str) -> bool:
    credentials = storage.credentials
    return (storage.bucket_name, storage.bucket_folder, credentials.region_name) == (bucket, "", _region()) and (
        credentials.aws_client_parameters.endpoint_url == _endpoint_url()
    )


def _split(location: str) -> tuple[str, str]:
    bucket, _, key = location[len(REMOTE_SCHEME) :].partition("/")
    if not bucket or not key:
        raise ValueError(f"Not an object location: {location}")
    return bucket, key


def _client():
    import boto3

    return boto3.client("s3", endpoint_url=_endpoint_url(), region_name=_region())


def _endpoint_url() -> str | None:
    return os.environ.get("POSER_S3_ENDPOINT_URL") or None


def _region() -> str:
    return os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
