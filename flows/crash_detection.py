"""Crash detection: marking analysis runs Crashed when their process died without a word.

A flow run whose worker or host dies (SIGKILL, a lost machine, an evicted container) stays
Running in Prefect forever, and none of its state hooks runs. Analysis runs send a heartbeat
event every `PREFECT_FLOWS_HEARTBEAT_FREQUENCY` seconds; the automation installed here marks a
run Crashed once it has sent no event for a few heartbeats. The web app then fails the
analysis (see `webapp.orchestration.refresh_status`), and the run can be retried.

Settings come from the `definitions.crash_detection` section of `prefect.yaml`, which also
sets the heartbeat of the analysis deployments.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from uuid import UUID

import yaml

ROOT = Path(__file__).resolve().parent.parent
AUTOMATION_NAME = "crash-silent-analysis-runs"
# The analysis flow's name (`flows.analyze.analyze_video`), as flow run events name it.
ANALYSIS_FLOW = "analyze-video"
CRASH_MESSAGE = "The run sent no heartbeat for {silence_s} s: its worker or host stopped."


@dataclass(frozen=True)
class CrashDetection:
    """How often analysis runs send a heartbeat, and how many may go missing."""

    heartbeat_s: int
    missed_heartbeats: int

    def __post_init__(self) -> None:
        if self.heartbeat_s < 30:
            raise ValueError("Prefect sends flow run heartbeats every 30 s at the most.")
        if self.missed_heartbeats < 2:
            # With one, a heartbeat a moment late would crash a healthy run.
            raise ValueError("At least two heartbeats must be missed before a run counts as crashed.")

    @property
    def silence(self) -> timedelta:
        """How long a running analysis may stay silent before it is marked Crashed."""
        return timedelta(seconds=self.heartbeat_s * self.missed_heartbeats)

    @classmethod
    def from_project(cls, path: Path = ROOT / "prefect.yaml") -> CrashDetection:
        """The settings in `definitions.crash_detection` of a Prefect project file."""
        section = yaml.safe_load(path.read_text())["definitions"]["crash_detection"]
        return cls(heartbeat_s=int(section["heartbeat_s"]), missed_heartbeats=int(section["missed_heartbeats"]))


def crash_automation(settings: CrashDetection):
    """The automation: after each heartbeat of an analysis run, expect another event of that
    run (a heartbeat or a new state) within the allowed silence; otherwise mark it Crashed."""
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    silence_s = int(settings.silence.total_seconds())
    return AutomationCore(
        name=AUTOMATION_NAME,
        description=f"Marks an {ANALYSIS_FLOW} run Crashed when it has been silent for {silence_s} s.",
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={"prefect.flow-run.*"},
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={"prefect.resource.role": "flow", "prefect.resource.name": ANALYSIS_FLOW},
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=settings.silence,
        ),
        actions=[ChangeFlowRunState(state=StateType.CRASHED, message=CRASH_MESSAGE.format(silence_s=silence_s))],
    )


def install(settings: CrashDetection) -> UUID:
    """Create the automation on the Prefect server in PREFECT_API_URL, replacing any earlier
    one of the same name; returns its id."""
    from prefect import get_client

    async def replace() -> UUID:
        async with get_client() as client:
            for existing in await client.read_automations_by_name(AUTOMATION_NAME):
                await client.delete_automation(existing.id)
            return await client.create_automation(crash_automation(settings))

    return asyncio.run(replace())
