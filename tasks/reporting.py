"""Reporting an analysis run to the web app through its internal endpoints.

Workers find the web app in `POSER_WEBAPP_URL` and authenticate with `POSER_INTERNAL_SECRET`.
The flow never touches the web app's database: it sends progress while it works, then the
outputs (as stored objects), turns, scores and outcome, each call idempotent.
"""

from __future__ import annotations

import logging
import mimetypes
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tasks.findings import MAX_FINDINGS, still_name
from tasks.objects import is_remote, upload
from tasks.files import file_sha256

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Poser-Internal-Secret"
# Artifact kinds by output file name, as the web app offers them for download.
ARTIFACT_KINDS = {
    "overlay.mp4": "video",
    "landmarks.csv": "landmarks_csv",
    "turns.csv": "turns_csv",
    "metrics.png": "chart",
    "results.json": "results_json",
} | {still_name(rank): f"finding_{rank}" for rank in range(1, MAX_FINDINGS + 1)}
_ATTEMPTS = 3


SERIES_POINTS = 1500
_SERIES_FIELDS = ("time_s", "inclination_deg", "left_edge_deg", "right_edge_deg")


def angle_series(frames: list[dict], points: int = SERIES_POINTS) -> dict[str, list]:
    """The per-frame angles as columns, every n-th frame so at most `points` remain: enough
    for a chart, small enough to store with the analysis."""
    step = max(1, -(-len(frames) // points))
    sampled = frames[::step]
    return {field: [frame.get(field) for frame in sampled] for field in _SERIES_FIELDS}


class ReportingError(Exception):
    """The web app could not be reached or refused a report."""


@dataclass(frozen=True)
class WebAppClient:
    base_url: str
    secret: str
    analysis_id: str
    timeout_s: float = 10.0

    @classmethod
    def from_environment(cls, analysis_id: str) -> WebAppClient:
        url, secret = os.environ.get("POSER_WEBAPP_URL"), os.environ.get("POSER_INTERNAL_SECRET")
        if not url or not secret:
            raise ReportingError("POSER_WEBAPP_URL and POSER_INTERNAL_SECRET must be set to report to the web app.")
        return cls(url.rstrip("/"), secret, analysis_id)

    def progress(self, step: str, percent: float) -> None:
        """Best effort: a lost progress report must not fail the analysis."""
        try:
            self._send("PUT", f"analyses/{self.analysis_id}/progress", {"step": step, "progress": percent}, attempts=1)
        except ReportingError as exc:
            log.warning("progress not reported: %s", exc)

    def attempt_started(self) -> None:
        """Tell the web app an attempt of the run started (the first, or a retry or rerun of
        an ended one, which reopens the analysis). Best effort, like progress."""
        try:
            self.status("processing")
        except ReportingError as exc:
            log.warning("start not reported: %s", exc)

    def status(
        self, status: str, error: str | None = None, results: dict | None = None, retryable: bool | None = None
    ) -> None:
        self._send(
            "PUT", f"analyses/{self.analysis_id}/status",
            {"status": status, "error": error, "results": results, "retryable": retryable},
        )

    def publish(self, results: dict[str, Any], out_dir: str, key_prefix: str, location: str) -> None:
        """Store (when `location` is remote) and register every output file, then send the
        turns and scores, then the outcome."""
        for name in results["outputs"].values():
            path = Path(out_dir) / name
            if is_remote(location):
                upload(path, f"{location.rstrip('/')}/{name}")
            self._send(
                "POST", "artifacts",
                {
                    "analysis_id": self.analysis_id, "kind": ARTIFACT_KINDS.get(name, path.stem),
                    "key": f"{key_prefix}/{name}", "size": path.stat().st_size,
                    "content_type": mimetypes.guess_type(name)[0] or "application/octet-stream",
                    "sha256": file_sha256(path),
                },
            )
        metrics = results.get("metrics")
        if metrics:
            self._send("POST", f"analyses/{self.analysis_id}/turns", {"turns": metrics["turns"]})
            summary = metrics["summary"]
            self._send(
                "PUT", f"analyses/{self.analysis_id}/edge-similarity",
                {side: summary[side] for side in ("overall", "left", "right")},
            )
        summary = {key: value for key, value in results.items() if key not in ("frames", "config")}
        summary["series"] = angle_series(results["frames"])
        self.status(results["outcome"], results=summary)

    def maintain(self) -> dict:
        """Run the web app's housekeeping; returns what it removed or marked."""
        return self._send("POST", "maintenance", {})

    def _send(self, method: str, path: str, payload: dict, attempts: int = _ATTEMPTS) -> dict:
        url = f"{self.base_url}/api/internal/{path}"
        for attempt in range(1, attempts + 1):
            try:
                response = httpx.request(
                    method, url, json=payload, headers={SECRET_HEADER: self.secret}, timeout=self.timeout_s
                )
            except httpx.HTTPError as exc:
                problem = f"{method} {url}: {exc}"
            else:
                if response.status_code < 400:
                    return response.json() if response.content else {}
                problem = f"{method} {url}: {response.status_code} {response.text[:200]}"
                if response.status_code < 500:
                    raise ReportingError(problem)
            if attempt < attempts:
                time.sleep(attempt)
        raise ReportingError(problem)
