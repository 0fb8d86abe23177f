"""End to end in headless Chromium. A skier signs in with the mailed code, uploads the piste
clip, watches the analysis complete, sees the chart and the video play, downloads the CSV. A
visitor on a partner's site (another origin) uses the embedded widget, confirms by email and
gets the result card; the same page on an origin the partner did not list is refused.
Screenshots of each step go to `test-artifacts/` (or POSER_TEST_ARTIFACTS)."""

from __future__ import annotations

import csv
import functools
import re
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.conftest import ARTIFACTS, INDOOR, PISTE, WORKER_SECRET, free_port, screenshots
from tests.webutil import create_partner, mail_text, sign_in_with_browser

pytestmark = pytest.mark.slow

LOW_COVERAGE = (
    "The skier was tracked in 71% of the clip (lost from 3.8 s to 6.0 s); scores cover only the tracked part."
)


def report_with_warning(app, analysis_id: str | None = None) -> None:
    """Report the complete analysis again, its real results now warning of low coverage, as a
    rerun of its flow on a clip where the skier was lost for a while would."""
    from webapp.db import db
    from webapp.models import Analysis

    with app.app_context():
        analysis = (
            db.session.get(Analysis, analysis_id) if analysis_id else db.session.scalars(db.select(Analysis)).one()
        )
        analysis_id, results = analysis.id, analysis.results
    response = app.test_client().put(
        f"/api/internal/analyses/{analysis_id}/status",
        json={"status": "complete", "results": results | {"warnings": [LOW_COVERAGE]}},
        headers={"X-Poser-Internal-Secret": WORKER_SECRET},
    )
    assert response.status_code == 200, response.json


def report_piste_results(app, results: dict) -> None:
    """Report the widget's analysis as the flow reports the real piste clip's analysis: its
    turns, summary scores with their intervals, and results."""
    from tasks.reporting import angle_series
    from webapp.db import db
    from webapp.models import Analysis

    with app.app_context():
        analysis_id = db.session.scalars(db.select(Analysis)).one().id
    client, headers = app.test_client(), {"X-Poser-Internal-Secret": WORKER_SECRET}
    summary = results["metrics"]["summary"]
    stored = {key: value for key, value in results.items() if key not in ("frames", "config")}
    for method, path, payload in (
        ("POST", "turns", {"turns": results["metrics"]["turns"]}),
        ("PUT", "edge-similarity", {side: summary[side] for side in ("overall", "left", "right")}),
        ("PUT", "status", {"status": "complete", "results": stored | {"series": angle_series(results["frames"])}}),
    ):
        response = client.open(
            f"/api/internal/analyses/{analysis_id}/{path}", method=method, json=payload, headers=headers
        )
        assert response.status_code == 200, response.json


@pytest.fixture(params=["sqlite"])
def app(request, tmp_path, smtp_sink):
    """One database kind is enough for the browser; the API tests cover both."""
    from flask_migrate import upgrade

    from webapp import create_app

    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "browser-test",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'web.sqlite3'}",
            "MAIL_BACKEND": "smtp",
            "SMTP_PORT": smtp_sink.port,
            "STORAGE_ROOT": str(tmp_path / "storage"),
        }
    )
    with app.app_context():
        upgrade()
    return app


def test_a_skier_signs_in_uploads_and_studies_the_result(served_app, worker, smtp_sink, browser_page, tmp_path):
    _, base = served_app
    page = browser_page
    shot = screenshots(page)

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
    # Every score with its interval: the headline (the mean of the three turns, too few for
    # the best four), each turn in the table, whiskers on the chart's bars.
    assert re.fullmatch(r"\d+–\d+", page.inner_text("#range-overall"))
    assert "Mean of 3 turns" in page.inner_text("#reason-overall")
    assert len(re.findall(r"\d+ \(\d+–\d+\)|uncertain: ", page.inner_text("#turn-rows"))) == 3
    assert page.evaluate("() => Chart.getChart('turns-chart').config.plugins.some((p) => p.id === 'intervals')")
    shot("4-results")

    assert page.is_hidden("#warnings")  # the skier was tracked throughout

    with page.expect_download() as download:
        page.click("button[data-kind=landmarks_csv]")
    saved = tmp_path / "landmarks.csv"
    download.value.save_as(saved)
    with open(saved, newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 151

    report_with_warning(served_app[0], page.url.rsplit("/", 1)[1])
    page.reload()
    page.wait_for_selector("#results:not([hidden])", timeout=30_000)
    assert page.inner_text("#warnings") == LOW_COVERAGE
    shot("4b-results-with-warning")

    page.goto(f"{base}/analyses")
    page.wait_for_selector("#rows tr")
    assert "Complete" in page.inner_text("#rows")
    shot("5-my-analyses")


PARTNER_PAGE = """<!doctype html>
<html><head><title>Alpine School: video lessons</title>
<style>button, p, label { font-family: serif; color: #a00 !important; } form { display: none; }</style></head>
<body><h1>Alpine School video lessons</h1><p>Send us a clip of your skiing.</p>
<script src="{app}/embed/widget.js" data-partner="alpine-school" async></script></body></html>
"""


@pytest.fixture
def partner_site(served_app, tmp_path):
    """A partner's page, served on its own loopback port (another origin than the app's), for
    a partner that allows that origin only."""
    app, base = served_app
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.html").write_text(PARTNER_PAGE.replace("{app}", base))
    port = free_port()
    create_partner(app, "alpine-school", f"127.0.0.1:{port}", "--max-trim-s", "8")
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path / "site"))
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield port
    server.shutdown()


def test_a_visitor_uses_the_widget_on_a_partners_site(
    served_app, partner_site, worker, smtp_sink, browser_page, tmp_path, analyses
):
    page = browser_page
    shot = screenshots(page)
    page.goto(f"http://127.0.0.1:{partner_site}/")
    page.wait_for_selector("text=Choose a video of your skiing")
    page.wait_for_selector("text=by Poser for Alpine School")
    (tmp_path / "notes.txt").write_text("not a video")
    page.set_input_files("input[name=file]", str(tmp_path / "notes.txt"))
    page.wait_for_selector("text=This is not a video we can analyse")
    page.set_input_files("input[name=file]", str(INDOOR))
    page.wait_for_selector("text=Analysing 0.0–8.0 s (8.0 s of at most 8 s).")
    page.fill("input[name=email]", "visitor@example.com")
    shot("widget-1-choose")
    sent = len(smtp_sink.messages)
    page.click("text=Upload and analyse")
    page.wait_for_selector("text=Check your email to start", timeout=60_000)
    shot("widget-2-check-email")

    mail = smtp_sink.messages[sent]
    assert mail["Subject"] == "Confirm and start your Alpine School ski analysis"
    link = re.search(r"http://\S+/api/embed/confirm\?token=\S+", mail_text(mail)).group(0)
    confirmation = page.context.new_page()
    confirmation.goto(link)
    assert "Your analysis has started" in confirmation.inner_text("#confirmation")
    confirmation.screenshot(path=str(ARTIFACTS / "widget-3-confirmed.png"), full_page=True)
    confirmation.close()

    page.wait_for_selector("progress[data-id=progress-bar]", timeout=60_000)
    shot("widget-4-progress")
    page.wait_for_selector("[data-view=result]:not([hidden])", timeout=300_000)
    assert page.inner_text("[data-id=turns]").isdigit()
    page.wait_for_function(
        "() => document.querySelector('.poser-widget').shadowRoot.querySelector('[data-id=overlay]').readyState >= 1",
        timeout=30_000,
    )
    shot("widget-5-result")
    assert "ready" in smtp_sink.messages[-1]["Subject"]
    assert page.is_hidden("[data-id=warnings]")
    # The top finding, with one thing to try: the indoor clip holds no complete turn, and says so.
    assert "Not enough clean turns" in page.inner_text("[data-id=finding]")
    assert "Try: Film six or more linked turns" in page.inner_text("[data-id=finding]")

    report_with_warning(served_app[0])
    page.reload()
    page.wait_for_selector("[data-view=result]:not([hidden])", timeout=30_000)
    assert page.inner_text("[data-id=warnings]") == LOW_COVERAGE
    shot("widget-5b-result-with-warning")

    with page.expect_popup() as popup:
        page.click("text=See the full results")
    results = popup.value
    results.wait_for_selector("#results:not([hidden])", timeout=30_000)
    assert "Submitted on Alpine School's site" in results.inner_text("#analysis")
    results.screenshot(path=str(ARTIFACTS / "widget-6-results-page.png"), full_page=True)

    # A clip with scored turns: the card gives the score with its interval, at a glance.
    report_piste_results(served_app[0], analyses["piste_followcam"][0])
    page.reload()
    page.wait_for_selector("[data-view=result]:not([hidden])", timeout=30_000)
    assert re.fullmatch(r"\d+", page.inner_text("[data-id=score]"))
    assert re.fullmatch(r"90% interval \d+–\d+", page.inner_text("[data-id=score-range]"))
    assert "Mean of 3 turns" in page.inner_text("[data-id=score-note]")
    shot("widget-5c-result-with-interval")

    page.goto(f"http://localhost:{partner_site}/")
    page.wait_for_selector("text=this site may not be allowed to use it")
    shot("widget-7-refused-origin")


def test_a_partner_owner_edits_their_site_settings(served_app, smtp_sink, browser_page):
    app, base = served_app
    create_partner(app)
    page = browser_page
    sign_in_with_browser(page, base, smtp_sink, "owner@alpine.example", then="/partners")

    form = page.locator("form.partner")
    assert 'data-partner="alpine-school"' in form.locator(".snippet").input_value()
    form.locator("textarea[name=domains]").fill("alpine.example\nhttps://www.alpine.example/")
    form.locator("input[name=max_trim_s]").fill("45")
    form.locator("button[type=submit]").click()
    page.wait_for_selector("text=Saved.")
    assert form.locator("textarea[name=domains]").input_value() == "alpine.example\nwww.alpine.example"
    screenshots(page)("partner-settings")
    form.locator("textarea[name=domains]").fill("alpine..example")
    form.locator("button[type=submit]").click()
    page.wait_for_selector("text=Not a domain")
