"""A Celery worker for the daily job's steps, when the deployment runs it with NEURON_EXECUTOR=celery.

    python -m pipelines.celery_worker [--name NAME] [--concurrency N] [other `celery worker` options]

It reads the same NEURON_* settings as the rest of Neuron (NEURON_CELERY_BROKER, NEURON_CELERY_BACKEND, the data
root or NEURON_LAKE_URI, the keys) and the DAGSTER_* variables of the instance each step records its events in;
deploy/celery/README.md has the whole procedure. It is ``celery -A pipelines.celery_worker worker`` on Neuron's
queue (``pipelines.jobs.CELERY_QUEUE``), with the broker, backend and worker settings the daily job submits with
(``pipelines.jobs.celery_app_config``), so the two sides cannot disagree.

Importing this module (Celery's ``-A``) imports Neuron and builds the daily job once (``pipelines.preload``) in the
worker's main process: each step runs in a process forked from it (``worker_max_tasks_per_child=1``), not in one
that imports Neuron again.
"""

from __future__ import annotations

import argparse
import os
import sys

from kernel.settings import SettingsError, load_settings
from pipelines.jobs import CELERY_QUEUE, celery_app_config


def _app():
    from dagster._core.execution.retries import RetryMode
    from dagster_celery.executor import CeleryExecutor
    from dagster_celery.make_app import make_app

    import pipelines.preload  # noqa: F401  (before the pool forks: see the module's docstring)

    settings = load_settings()
    if not settings.celery_broker:
        raise SettingsError("a Celery worker needs NEURON_CELERY_BROKER (e.g. redis://host:6379/0)")
    config = celery_app_config(settings.celery_broker, settings.celery_backend or "rpc://")
    executor = CeleryExecutor(retries=RetryMode.DISABLED, broker=config["broker"], backend=config["backend"],
                              config_source=config["config_source"])
    return make_app(executor.app_args())


if __name__ != "__main__":  # Celery's -A: `python -m pipelines.celery_worker` itself only starts Celery
    from dagster_celery.tasks import create_task

    app = _app()
    execute_plan = create_task(app)  # the task the executor submits each step as (dagster_celery's "execute_plan")


def main(argv: list[str] | None = None) -> None:
    """Start one worker on Neuron's queue. ``--name`` (default ``neuron``) gets ``@<hostname>`` appended;
    ``--app`` is the module Celery loads the app from (default this one; a test's wraps it); everything else
    goes to ``celery worker`` as given, e.g. ``--concurrency`` (default: the host's cores)."""
    parser = argparse.ArgumentParser(prog="python -m pipelines.celery_worker")
    parser.add_argument("--name", default="neuron")
    parser.add_argument("--app", default="pipelines.celery_worker")
    known, rest = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    name = known.name if "@" in known.name else f"{known.name}@%h"
    os.execvp(sys.executable, [sys.executable, "-m", "celery", "-A", known.app, "worker", "-Q", CELERY_QUEUE,
                               "-n", name, "--prefetch-multiplier=1", "--loglevel=INFO", *rest])


if __name__ == "__main__":
    main()
