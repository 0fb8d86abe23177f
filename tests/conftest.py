"""Shared fixtures: the sample clips, bad inputs derived from them, and a Prefect server."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MEDIA = ROOT.parent / "shared" / "media"
PISTE = MEDIA / "piste_followcam.mp4"
INDOOR = MEDIA / "indoor_carpet_front.mp4"

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("GLOG_minloglevel", "2")


@pytest.fixture(scope="session")
def media() -> Path:
    if not PISTE.is_file() or not INDOOR.is_file():
        pytest.fail(f"The sample clips are missing from {MEDIA}.")
    return MEDIA


@pytest.fixture(scope="session")
def derived(tmp_path_factory: pytest.TempPathFactory, media: Path) -> dict[str, Path]:
    """Bad and unusual inputs made from the sample clips at test time."""
    from tests import clips

    folder = tmp_path_factory.mktemp("derived")
    return clips.derive_all(PISTE, INDOOR, folder)


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory):
    """A temporary Prefect server on SQLite, with task results stored under a temp folder."""
    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    storage = tmp_path_factory.mktemp("prefect-results")
    with temporary_settings({PREFECT_LOCAL_STORAGE_PATH: storage}):
        with prefect_test_harness(server_startup_timeout=120):
            yield
