"""Feedback in headless Chromium: the findings of the piste clip on its results page, each
linked to its moment (the video seeks there and the chart marks it) with a still of it; and a
skier's progress chart and the side-by-side comparison of two of their three analyses.
Screenshots go to `test-artifacts/` (or POSER_TEST_ARTIFACTS)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import PISTE, screenshots
from tests.test_findings import check_claim, per_side
from tests.test_web_browser import app  # noqa: F401  (one database kind is enough for the browser)
from tests.test_web_findings import results_for, seed
from tests.webutil import https_client, sign_in, sign_in_with_browser

pytestmark = pytest.mark.slow

EMAIL = "progress@example.com"


def test_the_findings_of_the_piste_clip_link_to_their_moments(served_app, worker, smtp_sink, browser_page):
    _, base = served_app
    page = browser_page
    shot = screenshots(page)
    sign_in_with_browser(page, base, smtp_sink, "findings@example.com")
    page.set_input_files("#file", str(PISTE))
    page.click("#analyse")
    page.wait_for_url(re.compile(r".*/analyses/[0-9a-f-]{36}$"), timeout=60_000)
    page.wait_for_selector("#results:not([hidden])", timeout=300_000)
    page.wait_for_function("() => Chart.getChart('angles-chart')")
    analysis_id = page.url.rsplit("/", 1)[1]

    # The full results.json, as downloaded: every finding agrees with the numbers it cites.
    link = page.evaluate(f"fetch('/api/analyses/{analysis_id}/download/results_json').then((r) => r.json())")
    results = page.request.get(link["url"]).json()
    findings = results["findings"]
    assert 1 <= len(findings) <= 4
    for finding in findings:
        check_claim(finding, results["metrics"], results["frames"])

    # Every card shows a number: too few turns for the rolling scores, so the means stand in.
    summary = results["metrics"]["summary"]
    for side in ("overall", "left", "right"):
        assert page.inner_text(f"#score-{side}") != "–", side
    assert summary["left"] is None and f"Mean of {summary['left_mean_turns']} left turn" in page.inner_text(
        "#reason-left"
    )

    items = page.locator("#findings .finding")
    assert items.count() == len(findings)
    for item, finding in zip(items.all(), findings):
        assert finding["text"] in item.inner_text() and finding["try"] in item.inner_text()
    first = next(f for f in findings if f["time_s"] is not None)
    item = page.locator(f"#findings .finding[data-rank='{first['rank']}']")
    item.locator("img.still").scroll_into_view_if_needed()
    page.wait_for_function(
        f"() => document.querySelector(\"#findings .finding[data-rank='{first['rank']}'] img.still\").naturalWidth > 0",
        timeout=30_000,
    )
    assert item.locator("img.still").evaluate("(image) => [image.naturalWidth, image.naturalHeight]") == [1920, 1080]
    shot("feedback-1-findings")

    item.locator("[data-action=show-moment]").click()
    start = results["frames"][0]["time_s"]
    page.wait_for_function(
        f"() => Math.abs(document.getElementById('video').currentTime - {first['time_s'] - start}) < 0.05",
        timeout=30_000,
    )
    assert page.evaluate("() => Chart.getChart('angles-chart').$active") == first["rank"]
    assert page.evaluate("() => Chart.getChart('angles-chart').$cursor") == pytest.approx(first["time_s"])
    assert "active" in item.get_attribute("class")
    page.wait_for_function("() => document.getElementById('video').readyState >= 2", timeout=30_000)
    shot("feedback-2-moment")


def test_a_skiers_progress_over_three_analyses_and_a_comparison(served_app, smtp_sink, browser_page):
    app_, base = served_app
    client = https_client(app_)
    sign_in(client, smtp_sink, EMAIL)
    start = datetime(2026, 1, 10, 10, tzinfo=UTC)
    runs = [
        ("week-1.mp4", per_side(6, {"similarity": 70.0, "lag": -100.0, "angulation": 1.0}, {"similarity": 90.0})),
        ("week-2.mp4", per_side(6, {"similarity": 72.0, "lag": -90.0, "angulation": 1.0}, {"similarity": 91.0})),
        ("week-3.mp4", per_side(8, {"similarity": 89.0}, {"similarity": 91.0, "angulation": 12.0})),
    ]
    for week, (name, specs) in enumerate(runs):
        seed(app_, client, results_for(specs), name=name, created_at=start + timedelta(days=7 * week))

    page = browser_page
    shot = screenshots(page)
    sign_in_with_browser(page, base, smtp_sink, EMAIL, then="/analyses")
    page.wait_for_selector("#progress:not([hidden])")
    page.wait_for_function("() => Chart.getChart('progress-chart')")
    chart = page.evaluate(
        "() => { const c = Chart.getChart('progress-chart');"
        " return c.data.datasets.map((d) => ({ label: d.label, data: d.data, intervals: d.intervals })); }"
    )
    assert [dataset["label"] for dataset in chart] == ["Edge similarity", "Left turns (mean)", "Right turns (mean)"]
    headline, left = chart[0], chart[1]
    assert len(headline["data"]) == 3 and all(
        low <= value <= high for value, (low, high) in zip(headline["data"], headline["intervals"])
    )
    assert [round(value) for value in left["data"]] == [70, 72, 89]
    shot("progress-1-chart")

    # Week 1 against week 3: the left turns improved beyond their intervals.
    page.check("input.compare-pick[aria-label='Compare week-3.mp4']")
    assert page.is_disabled("#compare")
    page.check("input.compare-pick[aria-label='Compare week-1.mp4']")
    page.click("#compare")
    page.wait_for_selector("#comparison:not([hidden])")
    assert page.inner_text("#first-heading").startswith("week-1.mp4")  # oldest first, whatever the ticking order
    assert page.inner_text("tr[data-name=left_mean] td.change") == "Higher"
    assert page.inner_text("tr[data-name=right_mean] td.change") == "No measurable change"
    assert "measurable change" in page.inner_text("#comparison-summary")
    first_findings = page.inner_text("#first-findings")
    assert "Your 3 left turns score lower than your 3 right turns" in first_findings
    assert "inside (left) ski tips about 100 ms after" in first_findings
    shot("progress-2-compare")

    # Week 1 against week 2: nothing moved beyond the intervals.
    page.uncheck("input.compare-pick[aria-label='Compare week-3.mp4']")
    page.check("input.compare-pick[aria-label='Compare week-2.mp4']")
    page.click("#compare")
    page.wait_for_function("() => document.getElementById('second-heading').textContent.startsWith('week-2.mp4')")
    assert page.inner_text("#comparison-summary") == "No measurable change: every pair of intervals overlaps."
    changes = page.locator("#comparison-rows td.change").all_inner_texts()
    assert changes and set(changes) <= {"No measurable change", "Not comparable"}
    assert "(in both runs)" in page.inner_text("#second-findings")
    shot("progress-3-no-change")
