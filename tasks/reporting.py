"""Reporting an analysis run to the web app through its internal endpoints.

Workers find the web app in `POSER_WEBAPP_URL` and authenticate with `POSER_INTERNAL_SECRET`.
The flow never touches the web app's database: it sends progress while it works, then the
outputs (as stored objects), turns, scores and outcome, each call idempotent. Every payload is
a model of `tasks/contract.py`, which the web app checks it against.

Each request is sent once: the Prefect task that publishes the outputs retries as a whole, with
backoff (`tasks/steps.py`); progress is best effort; only the failure report, sent after the
flow has ended and so outside any task, tries `FAILURE_ATTEMPTS` times itself.
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
from pydantic import BaseModel

from tasks.contract import (
    ARTIFACT_KINDS,
    SECRET_HEADER,
    AnalysisStatus,
    ArtifactReport,
    ProgressReport,
    ResultsReport,
    ScoresReport,
    StatusReport,
    TurnsReport,
    outputs_key_prefix,
)
from tasks.files import file_sha256
from tasks.objects import is_remote, upload

log = logging.getLogger(__name__)

# The failure report's attempts, `BACKOFF_S` seconds apart at first, doubling after each.
FAILURE_ATTEMPTS = 3
BACKOFF_S = 1.0

SERIES_POINTS = 1500
_SERIES_FIELDS = ("time_s", "inclination_deg", "left_edge_deg", "right_edge_deg")


def angle_series(frames: list[dict[str, Any]], points: int = SERIES_POINTS) -> dict[str, list[Any]]:
    """The per-frame angles as columns, every n-th frame so at most `points` remain: enough
    for a chart, small enough to store with the analysis."""
    step = max(1, -(-len(frames) // points))
    sampled = frames[::step]
    return {field: [frame.get(field) for frame in sampled] for field in _SERIES_FIELDS}


def results_report(results: dict[str, Any]) -> dict[str, Any]:
    """The results as the web app gets them (`contract.ResultsReport`): all but the frames and
    the configuration, with the angles as a short series.

    Raises:
        pydantic.ValidationError: The results do not match the contract.
    """
    report = {key: value for key, value in results.items() if key not in ("frames", "config")}
    report["series"] = angle_series(results["frames"])
    ResultsReport.model_validate(report)
    return report


class ReportingError(Exception):
    """The web app could not be reached or refused a report."""


@dataclass(frozen=True)
class WebAppClient:
    """The web app's internal API, for one analysis.

    Attributes:
        base_url: Where the web app is, without a trailing slash.
        secret: The secret the web app and the workers share.
        analysis_id: The analysis this run computes.
        timeout_s: How long one request may take.
    """

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
            self._send("PUT", f"analyses/{self.analysis_id}/progress", ProgressReport(step=step, progress=percent))
        except ReportingError as exc:
            log.warning("progress not reported: %s", exc)

    def attempt_started(self) -> None:
        """Tell the web app an attempt of the run started (the first, or a retry or rerun of
        an ended one, which reopens the analysis). Best effort, like progress."""
        try:
            self.status(AnalysisStatus.PROCESSING)
        except ReportingError as exc:
            log.warning("start not reported: %s", exc)

    def status(
        self,
        status: AnalysisStatus,
        error: str | None = None,
        results: dict[str, Any] | None = None,
        retryable: bool | None = None,
        attempts: int = 1,
    ) -> None:
        """Report the analysis's status: an attempt started, or its outcome.

        Args:
            status: One of `contract.REPORTED_STATUSES`.
            error: Why it failed, in words for the user.
            results: The results report (`results_report`), for a run that ran to its end.
            retryable: For a failure, whether running it again may succeed.
            attempts: How many times to try, with backoff, when the web app cannot be reached
                or answers with a server error.
        """
        report = StatusReport(status=status, error=error, results=results, retryable=retryable)
        self._send("PUT", f"analyses/{self.analysis_id}/status", report, attempts)

    def publish(self, results: dict[str, Any], out_dir: str, location: str) -> None:
        """Store (when `location` is remote) and register every output file, under
        `contract.outputs_key_prefix`, then send the turns and scores, then the outcome."""
        key_prefix = outputs_key_prefix(self.analysis_id)
        for name in results["outputs"].values():
            path = Path(out_dir) / name
            if is_remote(location):
                upload(path, f"{location.rstrip('/')}/{name}")
            artifact = ArtifactReport(
                analysis_id=self.analysis_id,
                kind=ARTIFACT_KINDS[name],
                key=f"{key_prefix}/{name}",
                size=path.stat().st_size,
                content_type=mimetypes.guess_type(name)[0] or "application/octet-stream",
                sha256=file_sha256(path),
            )
            self._send("POST", "artifacts", artifact)
        metrics = results.get("metrics")
        if metrics:
            self._send("POST", f"analyses/{self.analysis_id}/turns", TurnsReport(turns=metrics["turns"]))
            summary = metrics["summary"]
            scores = ScoresReport(overall=summary["overall"], left=summary["left"], right=summary["right"])
            self._send("PUT", f"analyses/{self.analysis_id}/edge-similarity", scores)
        self.status(AnalysisStatus(results["outcome"]), results=results_report(results))

    def maintain(self) -> dict[str, Any]:
        """Run the web app's housekeeping; returns what it removed or marked."""
        return self._send("POST", "maintenance", None)

    def _send(self, method: str, path: str, report: BaseModel | None, attempts: int = 1) -> dict[str, Any]:
        """Send one report; a client error is final, a lost connection or a server error is
        tried again up to `attempts` times in all, with backoff."""
        url = f"{self.base_url}/api/internal/{path}"
        payload = report.model_dump(mode="json", by_alias=True) if report is not None else {}
        problem = ""
        for attempt in range(attempts):
            if attempt:
                time.sleep(BACKOFF_S * 2 ** (attempt - 1))
            try:
                response = httpx.request(
                    method, url, json=payload, headers={SECRET_HEADER: self.secret}, timeout=self.timeout_s
                )
            except httpx.HTTPError as exc:
                problem = f"{method} {url}: {exc}"
                continue
            if response.status_code < 400:
                answer: dict[str, Any] = response.json() if response.content else {}
                return answer
            problem = f"{method} {url}: {response.status_code} {response.text[:200]}"
            if response.status_code < 500:
                break
        raise ReportingError(problem)
