"""Runs whose step was lost with its Celery worker (NEURON_EXECUTOR=celery).

dagster-celery's run process submits each step as a Celery task and waits for its result. A task is acknowledged
when a worker starts it (Celery's default), so a worker killed inside a step (the OOM killer, a node drained, a pod
evicted) takes the step with it: no worker takes it again, no result ever comes, and the run waits for ever as
STARTED, holding its pool slots (tests/pipelines/test_celery_executor.py shows it). Nothing in Dagster notices.

``lost_steps`` notices: a step a worker announced (dagster-celery's engine event names the worker) that has not
ended is lost when no live worker is executing a task of that run. Workers are asked over the broker
(``inspect().active()``): a worker that is gone does not answer, and one restarted under the same name answers
without the task. ``pipelines.jobs.dead_run_sensor`` fails such a run once it has been lost at two evaluations in a
row, so a worker slow to answer one inspection does not fail a live run.
"""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg

CELERY_WORKER = "Celery worker"  # the metadata key of dagster-celery's "Executing steps" engine event
ENDED = (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.STEP_SKIPPED)


@dataclass(frozen=True)
class LostStep:
    run_id: str
    step_key: str
    worker: str  # as Celery names it: <name>@<host>

    @property
    def key(self) -> str:
        return f"{self.run_id}/{self.step_key}"


def announced_steps(instance: dg.DagsterInstance, run_id: str) -> dict[str, str]:
    """Steps of the run a Celery worker started and that have not ended -> the worker."""
    started = {}
    for rec in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        event = rec.dagster_event
        metadata = event.event_specific_data.metadata if event and event.event_specific_data else {}
        if event and event.step_key and CELERY_WORKER in metadata:
            started[event.step_key] = metadata[CELERY_WORKER].text
    ended = {rec.dagster_event.step_key for rec in instance.all_logs(run_id, of_type=set(ENDED))}
    return {step: worker for step, worker in started.items() if step not in ended}


def active_runs(broker: str, timeout: float = 3.0) -> dict[str, set[str]]:
    """Worker -> ids of the runs its tasks are executing, for every worker that answers within ``timeout``."""
    from celery import Celery

    app = Celery("neuron_health", broker=broker)
    try:
        replies = app.control.inspect(timeout=timeout).active() or {}
    finally:
        app.close()
    return {worker: {str(task.get("args")) + str(task.get("kwargs")) for task in tasks}
            for worker, tasks in replies.items()}


def lost_steps(instance: dg.DagsterInstance, broker: str, timeout: float = 3.0) -> list[LostStep]:
    """Steps of STARTED runs that a Celery worker started and no live worker is executing."""
    started = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
    in_flight = {run.run_id: steps for run in started if (steps := announced_steps(instance, run.run_id))}
    if not in_flight:
        return []
    active = active_runs(broker, timeout)
    lost = []
    for run_id, steps in in_flight.items():
        for step, worker in sorted(steps.items()):
            if not any(run_id in task for task in active.get(worker, ())):
                lost.append(LostStep(run_id, step, worker))
    return lost


def fail_lost_runs(instance: dg.DagsterInstance, lost: list[LostStep], seen_before: set[str]) -> list[str]:
    """Fail the runs of ``lost`` steps that were lost at the previous evaluation too (``seen_before``, their keys):
    the run's worker is asked to stop (the run launcher's terminate: a Kubernetes Job, a code server's
    subprocess), then the run is marked failed; ``kernel.runs.bury`` frees its pool slots."""
    failed = []
    for step in lost:
        if step.key not in seen_before or step.run_id in failed:
            continue
        run = instance.get_run_by_id(step.run_id)
        if run is None or run.status != dg.DagsterRunStatus.STARTED:
            continue
        try:
            stopped = instance.run_launcher.terminate(step.run_id)
        except Exception:  # noqa: BLE001 - its code server is gone too: failing the run is what is left
            stopped = False
        run = instance.get_run_by_id(step.run_id)
        if not stopped and run is not None and not run.is_finished:  # a run the launcher did not start (a CLI run)
            instance.report_run_failed(run, f"step {step.step_key} was lost: its Celery worker {step.worker} is "
                                            "gone (marked failed by neuron; re-execute the run from failure)")
        failed.append(step.run_id)
    return failed


__all__ = ["LostStep", "active_runs", "announced_steps", "fail_lost_runs", "lost_steps"]
