"""The pipeline's log lines reach the logs of its Prefect runs, as the Prefect UI shows them."""

from __future__ import annotations

import asyncio
import logging
import time
import warnings

import pytest

from tasks.runlogs import PIPELINE_LOGGERS, RunLogHandler, send_to_run_logs


def _run_logs(out_dir: str) -> list:
    """The logs of the `analyze-video` run that wrote to `out_dir`, read through the Prefect API."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName, LogFilter, LogFilterFlowRunId

    async def read() -> list:
        async with get_client() as client:
            runs = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=["analyze-piste_followcam"]))
            )
            run = next(run for run in runs if run.parameters.get("out_dir") == out_dir)
            return await client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])))

    return asyncio.run(read())


@pytest.mark.slow
def test_the_tracking_summary_is_in_the_runs_logs_in_prefect(analyses):
    results, out = analyses["piste_followcam"]
    skier = results["skier"]
    expected = f"Skier tracked in {skier['frames_tracked']} of {skier['frame_count']} frames"
    deadline = time.monotonic() + 30
    while True:
        logs = _run_logs(str(out))
        found = [log for log in logs if log.message.startswith(expected)]
        if found or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert found, [log.message for log in logs]
    (line,) = found
    assert line.name == "tasks.tracking" and line.level == logging.INFO
    # Written inside the detect-and-track step: the UI shows it under that task run too.
    assert line.task_run_id is not None


@pytest.mark.parametrize("name", [*PIPELINE_LOGGERS, "tasks.tracking", "flows.analyze"])
def test_the_pipeline_loggers_pass_info_lines_to_one_run_log_handler(name):
    send_to_run_logs()
    send_to_run_logs()
    logger = logging.getLogger(name)
    assert logger.isEnabledFor(logging.INFO)
    handlers = [
        handler for handler in logging.getLogger(name.split(".")[0]).handlers if isinstance(handler, RunLogHandler)
    ]
    assert len(handlers) == 1


def test_a_line_written_outside_any_run_goes_to_the_console_only_without_a_warning(caplog):
    send_to_run_logs()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with caplog.at_level(logging.INFO, logger="tasks"):
            logging.getLogger("tasks.tracking").info("outside any run")
    assert "outside any run" in caplog.text
