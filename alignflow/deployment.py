"""The scheduled deployment, on a Prefect work pool (`alignflow deploy`) or served by one process (`alignflow
serve`), made safe to leave running for months.

- One run at a time: the deployment's concurrency limit is 1 and a run due while another works waits its turn
  (Prefect's ENQUEUE strategy) instead of failing on the checkout's run lock.
- A run whose worker died is marked Crashed: its flow-run process sends a heartbeat every `heartbeat_seconds`, and
  an automation marks the run Crashed after three silent intervals. Without it the run would stay Running for ever
  and hold the deployment's only slot, so no later run could start.
- `gc` is passed to every run as the flow's cache policy (alignflow.remote.GC_POLICIES; the flow checks it).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

HEARTBEAT_ENV = "PREFECT_FLOWS_HEARTBEAT_FREQUENCY"
MISSED_HEARTBEATS = 3


@dataclass(frozen=True)
class Schedule:
    """When the deployment runs: a cron expression, or every `interval_seconds` (for soaks and tests)."""

    cron: str | None = None
    interval_seconds: int | None = None
    timezone: str = "UTC"

    def as_prefect(self) -> Any:
        from prefect.schedules import Cron, Interval

        if self.interval_seconds:
            return Interval(timedelta(seconds=self.interval_seconds))
        return Cron(self.cron, timezone=self.timezone)


def deploy_to_pool(
    flow: Any, source: str, pool: str, name: str, schedule: Schedule, gc: str = "none", heartbeat_seconds: int = 60
) -> str:
    """Create (or update) the deployment of `flow` from the checkout `source` on the process work pool `pool`,
    with its zombie-run automation; returns the deployment's id."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists

    check_heartbeat(heartbeat_seconds)
    with get_client(sync_client=True) as client:
        with contextlib.suppress(ObjectAlreadyExists):
            client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
    deployment_id = flow.from_source(source, "flows/pipeline.py:pipeline").deploy(
        name=name,
        work_pool_name=pool,
        schedule=schedule.as_prefect(),
        job_variables={"env": {HEARTBEAT_ENV: str(heartbeat_seconds)}},
        parameters={"gc": gc},
        print_next_steps=False,
        **one_at_a_time(),
    )
    crash_silent_runs(str(deployment_id), f"{flow.name}/{name}", heartbeat_seconds)
    return str(deployment_id)


def serve_here(flow: Any, name: str, schedule: Schedule, heartbeat_seconds: int = 60) -> None:
    """Serve `flow` from this process (`alignflow serve`) with the guarantees `deploy_to_pool` gives: one run at a
    time, heartbeats, and the automation that marks a run Crashed once they stop (this process killed with its
    runs). Blocks until interrupted."""
    import os

    from prefect import serve

    check_heartbeat(heartbeat_seconds)
    os.environ[HEARTBEAT_ENV] = str(heartbeat_seconds)  # the flow-run processes it starts inherit it
    deployment = flow.to_deployment(name=name, schedule=schedule.as_prefect(), **one_at_a_time())
    deployment_id = deployment.apply()  # the id the automation needs; serve() updates the same deployment
    crash_silent_runs(str(deployment_id), f"{flow.name}/{name}", heartbeat_seconds)
    serve(deployment, limit=1, print_starting_message=True)


def check_heartbeat(heartbeat_seconds: int) -> None:
    if heartbeat_seconds < 30:
        raise ValueError(f"heartbeat_seconds: {heartbeat_seconds} is below Prefect's minimum of 30")


def one_at_a_time() -> dict[str, Any]:
    """The deployment settings shared by both ways of running it: concurrency 1, a run that falls due meanwhile
    waits (ENQUEUE), and the project's tags and description."""
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy

    return {
        "concurrency_limit": ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE),
        "tags": ["alignflow"],
        "description": "alignflow RLHF pipeline (DVC stages, MLflow registry)",
    }


def crash_silent_runs(deployment_id: str, deployment: str, heartbeat_seconds: int) -> str:
    """The automation (Prefect's documented zombie-flow recipe, limited to this deployment) that marks a running
    flow run Crashed when no heartbeat, and no end state, came for MISSED_HEARTBEATS intervals. Replaces an older
    one of the same name, so a changed heartbeat takes effect; returns its name."""
    from prefect.automations import Automation
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    name = f"alignflow: crash silent runs of {deployment}"
    with contextlib.suppress(ValueError):  # none yet
        Automation.read(name=name).delete()
    ends = ("Completed", "Failed", "Cancelled", "Crashed")
    Automation(
        name=name,
        description="A flow run whose worker died stops sending heartbeats; mark it Crashed to free its slot.",
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={"prefect.flow-run.heartbeat", *(f"prefect.flow-run.{state}" for state in ends)},
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            match_related=ResourceSpecification(
                {"prefect.resource.id": [f"prefect.deployment.{deployment_id}"], "prefect.resource.role": "deployment"}
            ),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=MISSED_HEARTBEATS * heartbeat_seconds),
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.CRASHED,
                message=f"no heartbeat for {MISSED_HEARTBEATS} x {heartbeat_seconds} s: its worker or machine died",
            )
        ],
    ).create()
    return name
