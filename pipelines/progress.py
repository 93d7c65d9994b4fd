"""Progress of a Dagster run for the terminal: steps done out of the plan, each finished step with its time.

``execute_in_process`` blocks, so a thread follows the run in the instance's event log (the same records the UI
reads) and prints as steps finish: a Rich progress bar on a terminal, one plain line per step otherwise (CI
logs, pipes). Failures and skipped steps are named as they happen.
"""

from __future__ import annotations

import sys
import threading
from typing import TextIO

import dagster as dg

_TYPES = (dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE,
          dg.DagsterEventType.STEP_SKIPPED, dg.DagsterEventType.STEP_UP_FOR_RETRY)


class RunProgress:
    """``with RunProgress(instance, run_id): job.execute_in_process(run_id=run_id, ...)``."""

    def __init__(self, instance: dg.DagsterInstance, run_id: str, out: TextIO | None = None,
                 interval_s: float = 0.5) -> None:
        self.instance, self.run_id, self.out = instance, run_id, out or sys.stdout
        self.interval_s = interval_s
        self.live = self.out.isatty()
        self.total: int | None = None
        self.done = 0
        self.failed: list[str] = []
        self.skipped: list[str] = []
        self._started: dict[str, float] = {}
        self._cursor: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, name="run-progress", daemon=True)
        self._bar = None

    def __enter__(self) -> RunProgress:
        if self.live:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(TextColumn("[bold]dagster run"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TextColumn("{task.description}"),
                                 console=Console(file=self.out), transient=False)
            self._bar.start()
            self._task = self._bar.add_task("planning", total=None)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._poll()  # whatever arrived after the last tick
        if self._bar is not None:
            self._bar.update(self._task, description="")
            self._bar.stop()
        skipped = f", {len(self.skipped)} skipped" if self.skipped else ""
        failed = f", {len(self.failed)} failed: {', '.join(self.failed)}" if self.failed else ""
        self._print(f"{self.done} of {self.total or self.done} steps finished{skipped}{failed}")

    def _print(self, line: str) -> None:
        if self._bar is not None:
            self._bar.console.print(line, highlight=False)
        else:
            self.out.write(line + "\n")
            self.out.flush()

    def _plan_size(self) -> int | None:
        run = self.instance.get_run_by_id(self.run_id)
        if run is None or not run.execution_plan_snapshot_id:
            return None
        snap = self.instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
        return len(snap.steps) if snap else None

    def _follow(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self._poll()
            except Exception as exc:  # progress must never break the run it reports on
                self._print(f"(progress display stopped: {type(exc).__name__})")
                return

    def _poll(self) -> None:
        if self.total is None:
            self.total = self._plan_size()
            if self.total and self._bar is not None:
                self._bar.update(self._task, total=self.total)
        while True:
            conn = self.instance.get_records_for_run(self.run_id, cursor=self._cursor, of_type=set(_TYPES),
                                                     limit=500)
            for record in conn.records:
                self._event(record.event_log_entry)
            self._cursor = conn.cursor
            if not conn.has_more:
                break

    def _event(self, entry) -> None:
        event = entry.dagster_event
        step = event.step_key or "?"
        kind = event.event_type
        if kind == dg.DagsterEventType.STEP_START:
            self._started[step] = entry.timestamp
            if self._bar is not None:
                self._bar.update(self._task, description=step)
            return
        if kind == dg.DagsterEventType.STEP_UP_FOR_RETRY:
            self._print(f"  retry   {step}")
            return
        self.done += 1
        took = entry.timestamp - self._started.get(step, entry.timestamp)
        n = f"[{self.done:>3}/{self.total or '?'}]"
        if kind == dg.DagsterEventType.STEP_SUCCESS:
            line = f"  {n} ok      {step} ({took:.1f}s)"
        elif kind == dg.DagsterEventType.STEP_FAILURE:
            self.failed.append(step)
            message = event.event_specific_data.error.message.strip().splitlines()[0] if \
                event.event_specific_data and event.event_specific_data.error else ""
            line = f"  {n} FAILED  {step}: {message[:200]}"
        else:
            self.skipped.append(step)
            line = f"  {n} skipped {step} (an upstream step failed or a blocking check withheld it)"
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done)
            if kind == dg.DagsterEventType.STEP_SUCCESS:
                return  # the bar shows progress; only failures and skips get a line of their own
        self._print(line)
