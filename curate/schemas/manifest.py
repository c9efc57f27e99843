"""The `manifest.json` every subset carries: what it was cut from, by which criteria, and counts.

Downstream stages (captioner, prompt LMs) read it to know which projection the similarity
column came from and how much of the run survived; `filter` writes it last, so its presence
marks the subset complete. Counts always add up: `in == kept + dropped`, and the dropped
pairs are split by the first criterion each one failed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MANIFEST_FILE = "manifest.json"
MANIFEST_VERSION = 1

# Why a scored pair was dropped, in the order criteria are checked (first failure wins).
DROP_REASONS = ("below_min_sim", "above_max_sim", "above_max_false_match", "outside_top_fraction", "recipe", "where",
                "duplicate")
KEPT = "kept"


@dataclass(frozen=True)
class ScoresInput:
    """One scores file the subset was cut from, and the source shard its images came from."""

    path: str
    shard_id: str
    source: str
    format: str
    rows: int
    kept: int


@dataclass(frozen=True)
class OutputShard:
    """One file (or image folder) of the subset, relative to the subset directory."""

    path: str
    rows: int


@dataclass(frozen=True)
class FilterCounts:
    """Scored pairs in, kept, dropped; `dropped_by_reason` sums to `dropped`."""

    scored: int
    kept: int
    dropped_by_reason: dict[str, int] = field(default_factory=dict)

    @property
    def dropped(self) -> int:
        return self.scored - self.kept

    def to_json(self) -> dict[str, Any]:
        return {"in": self.scored, "kept": self.kept, "dropped": self.dropped,
                "dropped_by_reason": dict(self.dropped_by_reason)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "FilterCounts":
        return cls(scored=data["in"], kept=data["kept"], dropped_by_reason=data["dropped_by_reason"])


@dataclass(frozen=True)
class SubsetManifest:
    """Everything needed to trace a subset back to its run, projection and criteria."""

    run_dir: str
    inputs: list[ScoresInput]
    criteria: dict[str, Any]
    projections: list[str]
    projection_dirs: list[str]
    counts: FilterCounts
    format: str
    outputs: list[OutputShard]
    versions: dict[str, str]
    manifest_version: int = MANIFEST_VERSION

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["counts"] = self.counts.to_json()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "SubsetManifest":
        values = dict(data)
        values["inputs"] = [ScoresInput(**item) for item in data["inputs"]]
        values["outputs"] = [OutputShard(**item) for item in data["outputs"]]
        values["counts"] = FilterCounts.from_json(data["counts"])
        return cls(**values)


def read_manifest(subset_dir: Path) -> SubsetManifest:
    """The manifest of a finished subset (raises FileNotFoundError when there is none)."""
    return SubsetManifest.from_json(json.loads((Path(subset_dir) / MANIFEST_FILE).read_text()))
