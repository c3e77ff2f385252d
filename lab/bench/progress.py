"""The progress display of the load runs: a bar over the planned time, the run under way, runs
done, time left; a thread moves the bar during a run (a run is one blocking wrk container)."""

from __future__ import annotations

import threading
import time
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, SpinnerColumn, Task, TextColumn, TimeElapsedColumn
from rich.text import Text

from lab.bench import plan
from lab.bench.format import scheme_label
from lab.bench.plan import Step


class _Left(ProgressColumn):
    """Time left: the planned duration of what remains (more honest than a speed estimate)."""

    def render(self, task: Task) -> Text:
        left = max(0, int((task.total or 0) - task.completed))
        return Text(f"~{left // 60}m{left % 60:02d}s left", style="progress.remaining")


class RunProgress:
    """`with RunProgress(...) as shown:` then shown.starting(i) before run i, shown.finished(i) after."""

    def __init__(self, console: Console, steps: list[Step], pause: float, repeat: int) -> None:
        self.steps = steps
        self.pause = pause
        self.repeat = repeat
        columns = (
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(bar_width=30),
            TextColumn("{task.fields[done]}/{task.fields[steps]} runs"),
            TimeElapsedColumn(),
            _Left(),
        )
        self.progress = Progress(*columns, console=console, transient=False)
        self.stop = threading.Event()
        self.ticker = threading.Thread(target=self._tick, daemon=True)
        self.current = {"elapsed_before": 0.0, "step_start": time.monotonic(), "planned": 0.0}
        self.began = time.monotonic()

    def __enter__(self) -> RunProgress:
        self.progress.__enter__()
        total = plan.estimate_s(self.steps, self.pause)
        self.task = self.progress.add_task("starting", total=total, done=0, steps=len(self.steps))
        self.began = time.monotonic()
        self.ticker.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop.set()
        self.ticker.join(timeout=2)
        self.progress.__exit__(kind, error, trace)

    def _tick(self) -> None:
        while not self.stop.wait(0.5):
            into = min(time.monotonic() - self.current["step_start"], self.current["planned"])
            self.progress.update(self.task, completed=self.current["elapsed_before"] + into)

    def starting(self, index: int) -> None:
        step = self.steps[index]
        label = "warm-up" if step.warmup else f"rep {step.repetition}/{self.repeat}"
        self.current.update(
            elapsed_before=time.monotonic() - self.began,
            step_start=time.monotonic(),
            planned=step.duration + plan.RUN_OVERHEAD_S,
        )
        self.progress.update(
            self.task,
            description=f"{label} {step.test:<9} c={step.concurrency:<4} {scheme_label(step.target, step.scheme)}",
            total=(time.monotonic() - self.began) + plan.estimate_s(self.steps[index:], self.pause),
        )

    def finished(self, index: int) -> None:
        self.progress.update(self.task, done=index + 1)

    def print(self, text: str) -> None:
        """A line above the bar (the bar stays at the bottom)."""
        self.progress.console.print(text)
