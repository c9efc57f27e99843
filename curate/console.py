"""Terminal output: logs and progress on stderr, results on stdout, `--quiet` honoured.

Keeping logs off stdout lets users pipe a command's result (a table, JSON, CSV) elsewhere.
Both consoles print text as it is, never as rich markup: what they show is often data (a
caption `[/x]`, a key, a shard name, a path), and markup in data would restyle the output or
crash it with a `MarkupError`. Styling is given as `Text` styles, never inside strings.
"""

from __future__ import annotations

import logging
from typing import Any

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

stderr = Console(stderr=True, markup=False)
stdout = Console(markup=False)
log = logging.getLogger("curate")


def setup_logging(*, quiet: bool = False, verbose: bool = False) -> None:
    """Route the `curate` logger to stderr through rich; quiet keeps warnings and errors only."""
    level = logging.WARNING if quiet else (logging.DEBUG if verbose else logging.INFO)
    log.handlers.clear()
    handler = RichHandler(console=stderr, show_path=False, show_time=False, markup=False)
    log.addHandler(handler)
    log.setLevel(level)
    log.propagate = False
    for noisy in ("transformers", "huggingface_hub", "datasets"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    quiet_library_progress_bars()


def setup_worker_logging(*, quiet: bool) -> None:
    """A cluster worker's `curate` lines as plain text on its stderr, which Ray forwards to the
    driver's terminal (prefixed with the worker's pid and node); warnings only when quiet."""
    worker_log = logging.getLogger("curate")
    worker_log.handlers.clear()
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    worker_log.addHandler(handler)
    worker_log.setLevel(logging.WARNING if quiet else logging.INFO)
    worker_log.propagate = False
    quiet_library_progress_bars()


def quiet_library_progress_bars() -> None:
    """The libraries' own tqdm bars (weight loading) would interleave with ours."""
    try:
        from huggingface_hub.utils import disable_progress_bars
        from transformers.utils import logging as hf_logging

        disable_progress_bars()
        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except ImportError:  # pragma: no cover - both ship with transformers
        pass


class RateColumn(ProgressColumn):
    """Items per second since the bar opened, labelled with what the items are (pairs, rows).

    Work done over time elapsed, loading included: the figure an end-of-run summary divides
    out, so a bar and its summary agree (a windowed speed read 30x the summary on a short run
    whose workers spent most of it loading models). The ETA keeps rich's recent speed.
    """

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed
        if not task.completed or not elapsed:
            return Text(f"-- {self.unit}/s", style="progress.data.speed")
        return Text(f"{task.completed / elapsed:,.1f} {self.unit}/s", style="progress.data.speed")


def make_progress(*, unit: str = "pairs", quiet: bool = False, **kwargs: Any) -> Progress:
    """A progress bar with count, rate and ETA; disabled (but still usable) when quiet."""
    return Progress(
        TextColumn("{task.description}", style="progress.description", markup=False),  # shard names are data
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(unit),
        TimeElapsedColumn(),
        TextColumn("ETA", markup=False),
        TimeRemainingColumn(),
        console=stderr,
        disable=quiet,
        transient=False,
        **kwargs,
    )


class RunBar:
    """One bar over a whole run, whose clock is the run's: `seconds` is what the summary divides by.

    Opened before workers load their models, so the wait shows as a message (`loading`)
    instead of a bar frozen at 0, and counts in the run's time as it does in the user's.
    """

    def __init__(self, label: str, *, unit: str, total: int | None, quiet: bool) -> None:
        self.label = label
        self.progress = make_progress(unit=unit, quiet=quiet)
        self.task = self.progress.add_task(label, total=total)

    def __enter__(self) -> "RunBar":
        self.progress.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
        self.progress.stop()

    def say(self, status: str) -> None:
        """Show what the run is doing beside the label (`loading models`, `3/10 shards`)."""
        self.progress.update(self.task, description=f"{self.label} {status}".strip())

    def advance(self, samples: int) -> None:
        self.progress.advance(self.task, samples)

    def set(self, samples: int) -> None:
        self.progress.update(self.task, completed=samples)

    def stop(self) -> float:
        """Stop the clock (once); returns the seconds the bar ran, its rate's denominator."""
        if self._task.stop_time is None:
            self.progress.stop_task(self.task)
        return self.seconds

    @property
    def seconds(self) -> float:
        return self._task.elapsed or 0.0

    @property
    def _task(self) -> Task:
        return next(task for task in self.progress.tasks if task.id == self.task)
