"""Crash detection's settings in prefect.yaml, the automation it builds, and its installer."""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta

import pytest
import yaml
from click.testing import CliRunner

from flows.crash_detection import ANALYSIS_FLOW, AUTOMATION_NAME, CrashDetection, crash_automation
from tests.conftest import ROOT

PROJECT = yaml.safe_load((ROOT / "prefect.yaml").read_text())


def test_the_analysis_deployments_send_the_heartbeat_the_automation_expects():
    settings = CrashDetection.from_project()
    analyses = [d for d in PROJECT["deployments"] if d["entrypoint"] == "flows/analyze.py:analyze_video"]
    assert len(analyses) == 2
    for deployment in analyses:
        environment = deployment["work_pool"]["job_variables"]["env"]
        assert environment["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"] == str(settings.heartbeat_s)
    assert settings.silence >= timedelta(seconds=2 * settings.heartbeat_s)


def test_the_automation_crashes_silent_analysis_runs_only():
    from flows.analyze import analyze_video

    automation = crash_automation(CrashDetection(heartbeat_s=60, missed_heartbeats=3))
    trigger, (action,) = automation.trigger, automation.actions
    assert analyze_video.name == ANALYSIS_FLOW
    assert trigger.after == {"prefect.flow-run.heartbeat"} and trigger.expect == {"prefect.flow-run.*"}
    assert trigger.match_related.root["prefect.resource.name"] == ANALYSIS_FLOW
    assert (trigger.posture.value, trigger.within) == ("Proactive", timedelta(seconds=180))
    assert (action.state.value, action.force) == ("CRASHED", False)  # a finished run is never changed
    assert "180 s" in action.message


@pytest.mark.parametrize(("heartbeat_s", "missed"), [(10, 3), (60, 1)])
def test_settings_that_would_crash_healthy_runs_are_refused(heartbeat_s, missed):
    with pytest.raises(ValueError):
        CrashDetection(heartbeat_s=heartbeat_s, missed_heartbeats=missed)


def test_a_crashed_analysis_run_triggers_the_maintenance():
    from prefect.events import DeploymentEventTrigger, DeploymentTriggerTypes
    from pydantic import TypeAdapter

    maintenance = next(d for d in PROJECT["deployments"] if d["name"] == "maintenance")
    (trigger,) = [TypeAdapter(DeploymentTriggerTypes).validate_python(spec) for spec in maintenance["triggers"]]
    assert isinstance(trigger, DeploymentEventTrigger)
    assert trigger.expect == {"prefect.flow-run.Crashed"}
    assert trigger.match_related.root["prefect.resource.name"] == ANALYSIS_FLOW
    assert maintenance["concurrency_limit"] == 1


def test_the_command_installs_one_automation_however_often_it_runs(prefect_server):
    from prefect import get_client

    from flows.cli import main

    # The command sets logging defaults in the environment; keep them to this test.
    quiet = {"PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": os.environ.get("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL")}
    for _ in range(2):
        result = CliRunner().invoke(main, ["crash-detection"], env=quiet)
        assert result.exit_code == 0, result.output
    assert "180 s" in result.output

    async def installed():
        async with get_client() as client:
            return await client.read_automations_by_name(AUTOMATION_NAME)

    (automation,) = asyncio.run(installed())
    assert automation.trigger.within == CrashDetection.from_project().silence
