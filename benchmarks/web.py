"""Web API throughput and latency under concurrent load, on loopback.

Serves the app with gunicorn on a fresh SQLite (or `--database-url`) database holding one
user with `--analyses` finished analyses (one of them submitted through a partner's widget),
then drives the analyses list, the status endpoint and the widget's status endpoint (what
every open widget polls) from `--clients` concurrent clients for `--seconds` each, and prints
requests per second and latency percentiles.

    .venv/bin/python benchmarks/web.py [--clients 16] [--seconds 10] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


PARTNER_ORIGIN = "https://school.example"


def seed(database_url: str, count: int) -> list[tuple[str, str, dict]]:
    """Create the schema, a user and `count` complete analyses, the last one submitted through
    a partner's widget; returns each endpoint to load as (name, path, headers)."""
    from datetime import timedelta

    from flask_migrate import upgrade

    from webapp import create_app
    from webapp.db import db
    from webapp.embed import VISITOR_HEADER
    from webapp.models import Analysis, AnalysisStatus, EmbedToken, Partner, User, utcnow
    from webapp.services.accounts import issue_token
    from webapp.tokens import token_hash, visitor_key

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": os.environ["POSER_SECRET_KEY"]})
    with app.app_context():
        upgrade()
        user = User(email="load@example.com")
        db.session.add(user)
        db.session.flush()
        analyses = [
            Analysis(
                user_id=user.id,
                status=AnalysisStatus.COMPLETE,
                progress=100.0,
                input_key=f"uploads/{i}/input.mp4",
                edge_similarity_overall=70 + i % 20,
                results={"outcome": "complete"},
            )
            for i in range(count)
        ]
        partner = Partner(
            slug="school",
            display_name="School",
            allowed_domains=["school.example"],
            max_upload_bytes=1 << 30,
            max_trim_s=60,
            owner_user_id=user.id,
        )
        db.session.add_all([*analyses, partner])
        db.session.flush()
        widget = analyses[-1]
        widget.partner_id = partner.id
        db.session.add(
            EmbedToken(
                partner_id=partner.id,
                analysis_id=widget.id,
                email=user.email,
                client_ip="127.0.0.1",
                token_hash=token_hash("confirm"),
                results_token_hash=token_hash("results"),
                expires_at=utcnow() + timedelta(days=1),
                confirmed_at=utcnow(),
            )
        )
        bearer = {"Authorization": f"Bearer {issue_token(user)}"}
        db.session.commit()
        return [
            ("list (20 per page)", "/api/analyses", bearer),
            ("status", f"/api/analyses/{analyses[0].id}", bearer),
            (
                "widget status",
                f"/api/embed/school/status/{widget.id}",
                {"Origin": PARTNER_ORIGIN, VISITOR_HEADER: visitor_key(widget.id)},
            ),
        ]


def load(url: str, headers: dict, clients: int, seconds: float) -> tuple[int, np.ndarray, int]:
    """Requests done, their latencies (ms), and errors, from `clients` threads for `seconds`."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client() -> None:
        nonlocal errors
        mine, failed = [], 0
        with httpx.Client(headers=headers, timeout=10) as session:
            while time.monotonic() < stop:
                started = time.perf_counter()
                response = session.get(url)
                mine.append((time.perf_counter() - started) * 1000)
                failed += response.status_code != 200
        with lock:
            latencies.extend(mine)
            errors += failed

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(latencies), np.array(latencies), errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--analyses", type=int, default=200)
    parser.add_argument("--database-url", help="default: a new SQLite file")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="poser-web-bench-"))
    database_url = args.database_url or f"sqlite:///{folder / 'bench.sqlite3'}"
    # Development mode: the benchmark runs on this machine, without production secrets.
    os.environ.update(
        POSER_DEV_MODE="true",
        POSER_SECRET_KEY="benchmark-secret",
        POSER_SQLALCHEMY_DATABASE_URI=database_url,
        POSER_STORAGE_ROOT=str(folder / "storage"),
    )
    endpoints = seed(database_url, args.analyses)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(args.workers),
            "--threads",
            str(args.threads),
            "--log-level",
            "warning",
            "webapp:create_app()",
        ],
        cwd=ROOT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.get(f"{base}/api/auth/me", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        print(
            f"gunicorn {args.workers} workers x {args.threads} threads, {args.clients} clients, "
            f"{args.seconds:.0f} s per endpoint, {args.analyses} analyses, {database_url.split(':')[0]}"
        )
        header = (
            f"{'endpoint':<28} {'requests':>8} {'errors':>6} {'req/s':>8} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7}"
        )
        print(header)
        print("-" * len(header))
        for name, path, headers in endpoints:
            count, latencies, errors = load(base + path, headers, args.clients, args.seconds)
            p50, p95, p99 = np.percentile(latencies, [50, 95, 99])
            print(f"{name:<28} {count:>8} {errors:>6} {count / args.seconds:>8.0f} {p50:>7.1f} {p95:>7.1f} {p99:>7.1f}")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
