"""Files the pipeline writes and checks: atomic writes and sha256 digests."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside `path` to write the file to, renamed to `path` when the block
    ends without an error and removed otherwise, so a reader never sees half a file.

    The temporary name keeps the extension (`overlay.partial.mp4`) for writers that choose the
    format by it.

    Args:
        path: Where the finished file goes.

    Yields:
        The temporary path to write.
    """
    partial = path.with_name(f"{path.stem}.partial{path.suffix}")
    try:
        yield partial
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def file_sha256(path: str | Path) -> str:
    """The hex sha256 of a file's content."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
