"""Analyses that fail on the worker end as `failed` with a reason the skier can read."""

from __future__ import annotations

import pytest

from tests.test_web_full_path import submit, wait_until_done

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("clip", "trim", "reason"),
    [
        ("image", {}, "This file is a still image, not a video."),
        (
            "short",
            {"trim_start_s": 30, "trim_end_s": 40},
            "The trim starts at 30.00 s but the video is only 1.00 s long.",
        ),
    ],
)
def test_a_failed_analysis_says_why(served_app, worker, smtp_sink, derived, clip, trim, reason):
    client, analysis_id = submit(served_app[0], smtp_sink, derived[clip].read_bytes(), **trim)
    analysis, _ = wait_until_done(client, analysis_id)
    assert (analysis["status"], analysis["error"], analysis["retryable"]) == ("failed", reason, False)
