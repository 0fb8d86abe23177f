"""The pipeline's file helpers: atomic writes and sha256 digests."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tasks.files import atomic_path, file_sha256


@pytest.mark.parametrize(
    ("name", "temporary"),
    [("results.json", "results.partial.json"), ("overlay.mp4", "overlay.partial.mp4"), ("model", "model.partial")],
)
def test_a_file_appears_only_once_written_under_a_name_keeping_its_extension(tmp_path: Path, name: str, temporary: str):
    target = tmp_path / name
    with atomic_path(target) as partial:
        assert partial == tmp_path / temporary
        partial.write_text("done")
        assert not target.exists()
    assert target.read_text() == "done"
    assert sorted(path.name for path in tmp_path.iterdir()) == [name]


@pytest.mark.parametrize("existing", [None, "the previous version"])
def test_a_failed_write_leaves_no_partial_file_and_the_previous_version(tmp_path: Path, existing: str | None):
    target = tmp_path / "turns.csv"
    if existing is not None:
        target.write_text(existing)
    with pytest.raises(OSError, match="disk full"), atomic_path(target) as partial:
        partial.write_text("half")
        raise OSError("disk full")
    assert [path.name for path in tmp_path.iterdir()] == ([] if existing is None else ["turns.csv"])
    assert existing is None or target.read_text() == existing


@pytest.mark.parametrize("content", [b"", b"poser", bytes(range(256)) * 10_000])
def test_file_sha256_is_the_digest_of_the_content(tmp_path: Path, content: bytes):
    path = tmp_path / "clip.mp4"
    path.write_bytes(content)
    assert file_sha256(path) == file_sha256(str(path)) == hashlib.sha256(content).hexdigest()
