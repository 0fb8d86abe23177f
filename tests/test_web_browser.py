"""End to end in headless Chromium: sign in with the mailed code, upload the piste clip, watch
the analysis complete, see the chart and the video play, download the CSV. Screenshots of each
step go to `test-artifacts/` (or POSER_TEST_ARTIFACTS)."""

from __future__ import annotations

import csv
import os
import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import PISTE, ROOT

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("POSER_TEST_ARTIFACTS", ROOT / "test-artifacts"))


@pytest.fixture(params=["sqlite"])
def app(request, tmp_path, smtp_sink):
    """One database kind is enough for the browser; the API tests cover both."""
    from flask_migrate import upgrade

    from webapp import create_app

    app = create_app({
        "SECRET_KEY": "browser-test", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'web.sqlite3'}",
        "MAIL_BACKEND": "smtp", "SMTP_PORT": smtp_sink.port, "STORAGE_ROOT": str(tmp_path / "storage"),
    })
    with app.app_context():
        upgrade()
    return app


@pytest.fixture
def browser_page():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is not installed (scripts/setup.sh installs Debian's chromium).")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"],
        )
        context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
        yield context.new_page()
        browser.close()


def test_a_skier_signs_in_uploads_and_studies_the_result(served_app, worker, smtp_sink, browser_page, tmp_path):
    _, base = served_app
    page = browser_page
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = lambda name: page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)  # noqa: E731

    page.goto(f"{base}/signin")
    page.fill("#email", "browser@example.com")
    sent = len(smtp_sink.messages)
    page.click("text=Email me a code")
    page.wait_for_selector("#code-form:not([hidden])")
    code = re.search(r"\b(\d{6})\b", smtp_sink.messages[sent]["Subject"]).group(1)
    page.fill("#code", code)
    shot("1-sign-in")
    page.click("#code-form button")
    page.wait_for_url(f"{base}/")

    page.set_input_files("#file", str(PISTE))
    assert "piste_followcam.mp4" in page.inner_text("#chosen")
    shot("2-upload")
    page.click("#analyse")
    page.wait_for_url(re.compile(r".*/analyses/[0-9a-f-]{36}$"), timeout=60_000)
    page.wait_for_selector("#progress-panel:not([hidden])")
    shot("3-progress")

    page.wait_for_selector("#results:not([hidden])", timeout=300_000)
    page.wait_for_function("() => Chart.getChart('angles-chart') && Chart.getChart('turns-chart')")
    assert page.evaluate("() => Chart.getChart('turns-chart').data.datasets[0].data.length") == 3
    assert page.inner_text("#turn-rows").count("partial") == 2
    page.evaluate("() => { const v = document.getElementById('video'); v.muted = true; return v.play(); }")
    page.wait_for_function("() => document.getElementById('video').currentTime > 0.5", timeout=30_000)
    assert page.evaluate("() => Chart.getChart('angles-chart').$cursor") > 0
    shot("4-results")

    with page.expect_download() as download:
        page.click("button[data-kind=landmarks_csv]")
    saved = tmp_path / "landmarks.csv"
    download.value.save_as(saved)
    with open(saved, newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 151

    page.goto(f"{base}/analyses")
    page.wait_for_selector("#rows tr")
    assert "Complete" in page.inner_text("#rows")
    shot("5-my-analyses")
