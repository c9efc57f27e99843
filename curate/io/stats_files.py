"""Per-shard stats files: a finished shard's `ShardOutcome` as `RUN_DIR/stats/<step>/<shard-id>.json`.

Written atomically just before the shard's marking output, so every finished shard has one;
read back by `curate sql` (the `stats` view) and the report to show where a run's time went.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

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


def outcome_tables(layout: RunLayout) -> dict[str, pa.Table]:
    """The finished shards' outcomes as tables, for `curate sql` and the report: `stats` (one
    row per step and shard: rows, errors, seconds) and `stages` (seconds per step, shard and
    stage). Empty when no shard of the run has a stats file (a run made before they existed)."""
    outcomes = [o for o in read_outcomes(layout) if not o.skipped]
    if not outcomes:
        return {}
    stats = {"step": [o.step for o in outcomes], "shard_id": [o.shard_id for o in outcomes],
             "rows": [o.rows for o in outcomes], "errors": [sum(o.errors.values()) for o in outcomes],
             "seconds": [o.seconds for o in outcomes]}
    stages = [(o.step, o.shard_id, stage, seconds) for o in outcomes for stage, seconds in sorted(o.stages.items())]
    names = ("step", "shard_id", "stage", "seconds")
    return {"stats": pa.table(stats), "stages": pa.table({n: [row[i] for row in stages] for i, n in enumerate(names)},
                                                         schema=pa.schema([("step", pa.string()), ("shard_id", pa.string()),
                                                                           ("stage", pa.string()), ("seconds", pa.float64())]))}
