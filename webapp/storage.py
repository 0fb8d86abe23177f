"""Object storage for uploads and analysis outputs: S3 (any endpoint) or a local folder.

With S3, clients upload and download through presigned URLs and workers read and write the
bucket themselves. The embedded default keeps objects in a local folder and hands out URLs of
the app's own `/storage/` endpoints (`webapp/storage_links.py`), signed with the app secret
and expiring, with the same contract: the client PUTs the bytes to the URL it was given, with
the headers it was given.

A local upload link carries its signature in a header (so it never reaches an access log) and
accepts one complete upload of exactly the signed size: the first to arrive whole is kept,
and every later PUT (a replay, or one after the analysis was confirmed or deleted) is refused.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flask import abort, current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from tasks.files import file_sha256
from webapp.links import public_url

_CHUNK = 1 << 20
TOKEN_HEADER = "X-Poser-Upload-Token"


@dataclass(frozen=True)
class PresignedUpload:
    method: str
    url: str
    headers: dict[str, str]
    expires_in: int

    def as_dict(self) -> dict:
        return {"method": self.method, "url": self.url, "headers": self.headers, "expires_in": self.expires_in}


class LocalStorage:
    """Objects as files under `root`; keys are relative paths."""

    def __init__(self, root: Path, secret: str) -> None:
        self.root = root.resolve()
        self._signer = URLSafeTimedSerializer(secret, salt="poser-local-storage")

    def presign_upload(
        self, key: str, content_type: str, size: int, expires_in: int, origin: str | None = None
    ) -> PresignedUpload:
        """A PUT URL and the signed header to send with it; with `origin`, a browser page of
        that origin may use it too."""
        token = self._signer.dumps({"key": key, "op": "put", "type": content_type, "size": size, "origin": origin})
        url = public_url("storage.put_object", key=key)
        return PresignedUpload("PUT", url, {"Content-Type": content_type, TOKEN_HEADER: token}, expires_in)

    def presign_download(self, key: str, expires_in: int) -> str:
        token = self._signer.dumps({"key": key, "op": "get"})
        return public_url("storage.get_object", key=key, token=token)

    def claims(self, token: str, key: str, op: str, max_age: int) -> dict | None:
        """The signed claims of a valid `token` for `op` on `key`, else None."""
        try:
            claims = self._signer.loads(token, max_age=max_age)
        except BadSignature:
            return None
        return claims if claims.get("key") == key and claims.get("op") == op else None

    def verify(self, token: str, key: str, op: str, max_age: int) -> dict:
        """The signed claims of `token`, or a 403 when it is forged, expired or for another object."""
        try:
            claims = self._signer.loads(token, max_age=max_age)
        except SignatureExpired:
            abort(403, "This link has expired.")
        except BadSignature:
            abort(403, "Invalid signature.")
        if claims.get("key") != key or claims.get("op") != op:
            abort(403, "Invalid signature.")
        return claims

    def location(self, key: str) -> str:
        """Where a worker on this machine finds the object: its file path."""
        return str(self.path(key))

    def path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            abort(400, "Invalid object key.")
        return path

    def size(self, key: str) -> int | None:
        path = self.path(key)
        return path.stat().st_size if path.is_file() else None

    def sha256(self, key: str) -> str:
        return file_sha256(self.path(key))

    def write(self, key: str, stream, size: int, claim: Callable[[], bool]) -> None:
        """Store exactly `size` bytes from `stream` under `key`, atomically, if `claim()` (called
        once they have all arrived) allows it; 413 for more bytes, 400 for fewer, 409 when the
        claim is refused. Nothing is stored otherwise."""
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        # Each PUT writes a file of its own, so parallel ones cannot mix their bytes.
        partial = target.with_name(f"{target.name}.{secrets.token_hex(8)}.partial")
        written = 0
        try:
            with open(partial, "wb") as out:
                while chunk := stream.read(_CHUNK):
                    written += len(chunk)
                    if written > size:
                        abort(413, "The file is larger than declared.")
                    out.write(chunk)
            if written != size:
                abort(400, f"The upload ended early: {written} of {size} bytes arrived. Upload the file again.")
            if not claim():
                abort(409, "This upload link has already been used.")
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)

    def analysis_ids(self) -> set[str]:
        """Ids of the analyses that have objects under `uploads/` or `analyses/`."""
        return {
            entry.name
            for top in ("uploads", "analyses")
            if (self.root / top).is_dir()
            for entry in (self.root / top).iterdir()
        }

    def delete_prefix(self, prefix: str) -> None:
        folder = self.path(prefix)
        if folder.is_dir():
            shutil.rmtree(folder)
        elif folder.is_file():
            folder.unlink()


class S3Storage:
    """Objects in an S3 bucket; credentials come from the usual AWS environment variables."""

    def __init__(self, bucket: str, endpoint_url: str | None, region: str | None) -> None:
        import boto3

        self.bucket = bucket
        self._s3 = boto3.client("s3", endpoint_url=endpoint_url, region_name=region)

    def presign_upload(
        self, key: str, content_type: str, size: int, expires_in: int, origin: str | None = None
    ) -> PresignedUpload:
        """A presigned PUT URL. Browser pages of other origins need the bucket's CORS rules
        to allow them (see deployments/README.md); `origin` is not part of the signature."""
        url = self._s3.generate_presigned_url(
            "put_object", Params={"Bucket": self.bucket, "Key": key, "ContentType": content_type}, ExpiresIn=expires_in
        )
        return PresignedUpload("PUT", url, {"Content-Type": content_type}, expires_in)

    def presign_download(self, key: str, expires_in: int) -> str:
        # Outputs are stored with a Content-Disposition of their own (see tasks/objects.py);
        # not every S3 server accepts response-header overrides in a presigned URL.
        return self._s3.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_in
        )

    def location(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def copy(self, source: str, target: str) -> None:
        """Copy an object within the bucket (on the server, whatever its size)."""
        self._s3.copy({"Bucket": self.bucket, "Key": source}, self.bucket, target)

    def check(self) -> None:
        """Raise unless the bucket is reachable with these credentials."""
        self._s3.head_bucket(Bucket=self.bucket)

    def size(self, key: str) -> int | None:
        from botocore.exceptions import ClientError

        try:
            return self._s3.head_object(Bucket=self.bucket, Key=key)["ContentLength"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def sha256(self, key: str) -> str:
        digest = hashlib.sha256()
        body = self._s3.get_object(Bucket=self.bucket, Key=key)["Body"]
        for chunk in body.iter_chunks(_CHUNK):
            digest.update(chunk)
        return digest.hexdigest()

    def analysis_ids(self) -> set[str]:
        """Ids of the analyses that have objects under `uploads/` or `analyses/`."""
        paginator = self._s3.get_paginator("list_objects_v2")
        return {
            common["Prefix"].split("/")[1]
            for top in ("uploads/", "analyses/")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=top, Delimiter="/")
            for common in page.get("CommonPrefixes", [])
        }

    def delete_prefix(self, prefix: str) -> None:
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix.rstrip("/") + "/"):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                self._s3.delete_objects(Bucket=self.bucket, Delete={"Objects": keys})


def storage() -> LocalStorage | S3Storage:
    """The app's object storage, built once from its config."""
    app = current_app
    if "poser_storage" not in app.extensions:
        config = app.config
        store: LocalStorage | S3Storage
        if config["STORAGE_BACKEND"] == "s3":
            store = S3Storage(config["S3_BUCKET"], config["S3_ENDPOINT_URL"], config["S3_REGION"])
        else:
            root = Path(config["STORAGE_ROOT"] or Path(app.instance_path) / "storage")
            store = LocalStorage(root, config["SECRET_KEY"])
        app.extensions["poser_storage"] = store
    return app.extensions["poser_storage"]
