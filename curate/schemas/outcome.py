"""What a sharded step did: one `ShardOutcome` per shard, and a `StepOutcome` over the run.

Every sharded step (embed, score) returns the same types, so executors, progress bars, the
end-of-run tables and the per-shard stats files speak of one thing. A finished shard's
outcome is also written to `RUN_DIR/stats/<step>/<shard-id>.json` (img2dataset's
`_stats.json`, datatrove's `stats/`), so a finished run still tells where its time went
(`curate sql`'s `stats` view, the report).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from curate.schemas.tables import SCHEMA_VERSION


@dataclass
class ShardOutcome:
    """One shard: rows written, samples refused by kind, seconds per stage.

    `skipped` when an earlier run had finished the shard (nothing was done this time);
    `counts` holds step-specific figures (score's `non_finite`). in = `rows` + errors.
    """

    step: str
    shard_id: str
    rows: int = 0
    errors: Counter = field(default_factory=Counter)
    stages: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    skipped: bool = False
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def pairs(self) -> int:
        """Embedding calls its rows pairs: one image-text pair per row."""
        return self.rows

    @property
    def samples(self) -> int:
        """Every sample the shard held: in = out + errors (what progress bars count)."""
        return self.rows + sum(self.errors.values())

    def to_json(self) -> dict[str, Any]:
        payload = asdict(self)
        payload["errors"] = dict(self.errors)
        payload["schema_version"] = SCHEMA_VERSION
        return payload

    @classmethod
    def from_json(cls, text: str) -> "ShardOutcome":
        data = json.loads(text)
        data.pop("schema_version", None)
        data["errors"] = Counter(data.get("errors", {}))
        return cls(**data)


@dataclass
class StepOutcome:
    """A sharded step's run: each shard's outcome (skipped ones too) and the wall time spent."""

    step: str
    shards: list[ShardOutcome]
    seconds: float

    @property
    def done(self) -> list[ShardOutcome]:
        return [s for s in self.shards if not s.skipped]

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.done)

    @property
    def pairs(self) -> int:
        return self.rows

    @property
    def errors(self) -> Counter:
        return sum((s.errors for s in self.done), Counter())

    @property
    def stages(self) -> dict[str, float]:
        """Seconds per stage summed over this run's shards (load, copy, read, decode, model, write)."""
        total: Counter = Counter()
        for shard in self.done:
            total.update(shard.stages)
        return dict(total)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    @property
    def pairs_per_second(self) -> float:
        return self.rows_per_second
