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
    """Items per second, labelled with what the items are (pairs, rows)."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.1f} {self.unit}/s" if speed else f"-- {self.unit}/s", style="progress.data.speed")


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
