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

from curate.io.formats.base import Shard
from curate.schemas.config import ExecutorConfig


class ShardOutcome(Protocol):
    """What a worker returns per shard; `samples` (in = out + errors) drives progress."""

    shard_id: str

    @property
    def samples(self) -> int: ...


class ShardWorker(Protocol):
    """Built once per process; `run` processes one whole shard and returns its outcome.

    `upcoming` is the shard the executor will most likely hand this worker next: a worker may
    start fetching it (a remote shard's copy) while it processes `shard`.
    """

    def run(self, shard: Shard, advance: Callable[[int], None], upcoming: Shard | None = None) -> ShardOutcome: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class ShardJob:
    """One command's work as an executor sees it, and how its progress bar reads."""

    shards: list[Shard]
    build_worker: Callable[[], ShardWorker]  # picklable: shipped to Ray workers
    label: str  # "embed", "score": the progress bar's description
    unit: str = "pairs"
    total: int | None = None  # estimated samples over all shards; None: no ETA
    quiet: bool = False


@dataclass
class JobOutcome:
    """Per-shard outcomes in the job's shard order, and the wall time spent on shards."""

    results: list[Any]  # one ShardOutcome per shard, of the step's own type
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
