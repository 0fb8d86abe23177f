"""The scheduled `maintenance` flow: the web app's housekeeping, triggered through its internal API."""

from __future__ import annotations

from prefect import flow, get_run_logger

from tasks.reporting import WebAppClient


@flow(name="maintenance", retries=1, retry_delay_seconds=60)
def maintenance() -> dict:
    """Expire unconfirmed uploads and embed tokens, remove orphaned stored objects, and mark
    failed the analyses whose flow runs crashed (e.g. their worker died) or are gone. Needs
    POSER_WEBAPP_URL and POSER_INTERNAL_SECRET."""
    counts = WebAppClient.from_environment(analysis_id="").maintain()
    get_run_logger().info("Maintenance: %s", counts)
    return counts
