"""The contract between steps and executors: a job of shards, its workers, their outcomes.

A step hands an executor a `ShardJob`: the shards still to do and a *builder* of its worker
(a picklable callable, e.g. `functools.partial(EmbedWorker, config)`). The executor builds
workers where they will run (this process, or Ray worker processes on a cluster), so models
are always loaded inside the process that uses them, and feeds them shards one at a time.
Each worker writes its shard's outputs atomically, which is what makes retrying a shard on
another worker safe. Executors are picked by name from `EXECUTORS`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, Protocol

from curate.schemas.config.flow import ExecutorConfig
from curate.schemas.outcome import ShardOutcome


class WorkItem(Protocol):
    """What an executor hands a worker: an input shard (embed) or a run table's file (score)."""

    shard_id: str
    path: Any


class ShardWorker(Protocol):
    """Built once per process; `run` processes one whole shard and returns its outcome.

    `upcoming` is the shard the executor will most likely hand this worker next: a worker may
    start fetching it (a remote shard's copy) while it processes `shard`. `device` says where
    its model runs (`cuda:0`, `cpu`), for the line an executor prints per worker.
    """

    device: str

    def run(self, shard: Any, advance: Callable[[int], None], upcoming: Any = None) -> ShardOutcome: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class ShardJob:
    """One command's work as an executor sees it, and how its progress bar reads."""

    shards: list[WorkItem]
    build_worker: Callable[[], ShardWorker]  # picklable: shipped to Ray workers
    label: str  # "embed", "score": the progress bar's description
    unit: str = "pairs"
    total: int | None = None  # estimated samples over all shards; None: no ETA
    quiet: bool = False


@dataclass
class JobOutcome:
    """Per-shard outcomes in the job's shard order, and the wall time spent on shards."""

    results: list[ShardOutcome]  # one per shard, in job order
    seconds: float


class Executor(ABC):
    """Runs a `ShardJob` to completion or raises; never returns partial results."""

    def __init__(self, config: ExecutorConfig) -> None:
        self.config = config

    @abstractmethod
    def run(self, job: ShardJob) -> JobOutcome:
        """Process every shard of `job` once and return their outcomes in job order."""


def ignore_progress(_: int) -> None:
    """The `advance` of a worker whose progress is counted per shard by its executor."""
