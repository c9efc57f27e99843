"""Per-shard stats files: a finished shard's `ShardOutcome` as `RUN_DIR/stats/<step>/<shard-id>.json`.

Written atomically just before the shard's marking output, so every finished shard has one;
read back by `curate sql` (the `stats` view) and the report to show where a run's time went.
"""

from __future__ import annotations

from typing import Any

from curate.io.atomic import write_json_atomic
from curate.schemas.layout import RunLayout
from curate.schemas.outcome import ShardOutcome


def write_outcome(layout: RunLayout, outcome: ShardOutcome) -> None:
    write_json_atomic(layout.stats(outcome.step, outcome.shard_id), outcome.to_json())


def stats_files(layout: RunLayout) -> list[Any]:
    """Every finished shard's stats file, by step then shard id (temporary files are dot-files)."""
    root = layout.root / "stats"
    if not root.is_dir():
        return []
    return sorted(p for step in sorted(root.iterdir()) if step.is_dir()
                  for p in step.glob("*.json") if not p.name.startswith("."))


def read_outcomes(layout: RunLayout) -> list[ShardOutcome]:
    return [ShardOutcome.from_json(path.read_text()) for path in stats_files(layout)]
