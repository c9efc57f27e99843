"""Runtime tests embed for real, so they share the pipeline tests' tiny encoders; `terminal`
captures what a user watches (the bar and the `curate` log lines)."""

from __future__ import annotations

import re

import pytest

from tests.pipelines.conftest import tiny_encoders, tiny_models  # noqa: F401  (fixtures)


class ConsoleCapture:
    """The terminal a user watches: the progress bar's console and the `curate` log lines."""

    def __init__(self, monkeypatch) -> None:
        import io
        import logging

        from rich.console import Console

        self.bar = io.StringIO()
        monkeypatch.setattr("curate.console.stderr", Console(file=self.bar, width=200, force_terminal=False))
        self.lines: list[str] = []
        self.handler = logging.Handler()
        self.handler.emit = lambda record: self.lines.append(record.getMessage())
        self.logger = logging.getLogger("curate")
        self.saved = self.logger.handlers[:], self.logger.level, self.logger.propagate
        self.logger.handlers[:] = [self.handler]
        self.logger.setLevel(logging.INFO)  # setLevel, not the attribute: it clears the level cache
        self.logger.propagate = False

    def close(self) -> None:
        handlers, level, propagate = self.saved
        self.logger.handlers[:] = handlers
        self.logger.setLevel(level)
        self.logger.propagate = propagate

    def final_rate(self) -> str:
        """The rate the bar shows when the run ends (its last drawing)."""
        return re.findall(r"([\d,.]+) pairs/s", self.bar.getvalue())[-1]


@pytest.fixture
def terminal(monkeypatch):
    capture = ConsoleCapture(monkeypatch)
    yield capture
    capture.close()
