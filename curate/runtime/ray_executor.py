"""The `ray` executor: a pool of Ray actors, each holding one copy of the models, fed shards.

Why actors rather than a task per shard: loading ResNet-50 + BERT onto a GPU takes seconds
and a shard takes about a minute, so a task per shard would spend a good part of every GPU's
time reloading weights. An actor builds the step's worker once (inside its own process, on
the GPU Ray gave it) and then embeds shard after shard; the driver gives each actor a new
shard as soon as it returns one, so fast and slow nodes both stay busy.

Failures: an actor whose process dies (OOM kill, preempted node, segfault) is restarted by
Ray (`max_restarts`), rebuilding its models, and the shard it held is retried on it
(`max_task_retries`). The dead attempt left only a hidden temporary file, since a shard's
outputs are renamed into place when complete, so the retry cannot double or half-write
anything. An ordinary exception in a shard is a bug or a user error: it is not retried and
ends the run, as it would locally.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections import deque
from typing import Any, Callable

from curate.errors import CurateError
from curate.runtime.jobs import (
    Executor,
    JobOutcome,
    ShardJob,
    ShardWorker,
    WorkItem,
    ignore_progress,
)
from curate.schemas.config.flow import ExecutorConfig

log = logging.getLogger("curate")
POLL_SECONDS = 0.5  # how often the driver's bar reads the workers' batch counts
RAY_HINT = "The ray executor needs Ray on this machine and every node: pip install 'curate[ray]'."


def import_ray() -> Any:
    """Ray, or a one-line install hint (it is an optional dependency)."""
    try:
        import ray
    except ImportError:
        raise CurateError(RAY_HINT) from None
    return ray


class ProgressCounter:
    """A small Ray actor the workers tell, batch by batch, how far each shard has got.

    The driver reads it between shard results, so the cluster's bar moves as a local run's
    does rather than a whole shard at a time. A retried shard starts again from 0.
    """

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def start(self, shard_id: str) -> None:
        self.counts[shard_id] = 0

    def add(self, shard_id: str, samples: int) -> None:
        self.counts[shard_id] = self.counts.get(shard_id, 0) + samples

    def snapshot(self) -> dict[str, int]:
        return dict(self.counts)


class BatchedReport:
    """A worker's `advance` callback that tells the counter at most every `POLL_SECONDS`:
    error rows advance one sample at a time, and a call per sample would flood the counter."""

    def __init__(self, counter: Any, shard_id: str) -> None:
        self.counter, self.shard_id = counter, shard_id
        self.pending, self.last = 0, time.monotonic()
        counter.start.remote(shard_id)  # calls from one actor arrive in order: reset comes first

    def __call__(self, samples: int) -> None:
        self.pending += samples
        if time.monotonic() - self.last >= POLL_SECONDS:
            self.counter.add.remote(self.shard_id, self.pending)
            self.pending, self.last = 0, time.monotonic()


class ShardQueue:
    """Hands out shards so each worker knows its next one in advance (to prefetch it).

    Every worker that takes a shard also gets the following one reserved; when the queue runs
    dry, an idle worker takes a shard reserved for a busy one rather than wait, so the tail of
    a run is never longer than with no reservation.
    """

    def __init__(self, shards: list[WorkItem]) -> None:
        self.queue = deque(shards)
        self.reserved: dict[int, WorkItem] = {}

    def next_for(self, worker: int) -> tuple[WorkItem, WorkItem | None] | None:
        """(shard to run now, shard reserved as its next) for a free worker, or None if none are left."""
        shard = self.reserved.pop(worker, None)
        if shard is None and self.queue:
            shard = self.queue.popleft()
        if shard is None and self.reserved:
            shard = self.reserved.pop(next(iter(self.reserved)))  # steal: its prefetch is wasted, no time is
        if shard is None:
            return None
        upcoming = self.queue.popleft() if self.queue else None
        if upcoming is not None:
            self.reserved[worker] = upcoming
        return shard, upcoming


def samples_so_far(finished: dict[str, int], live: dict[str, int]) -> int:
    """The bar's position: final counts of finished shards, live counts of the others."""
    return sum(finished.values()) + sum(n for shard_id, n in live.items() if shard_id not in finished)


class ShardActor:
    """The body of one Ray worker: builds the step's worker once, then runs shard after shard.

    It works in the driver's working directory when that exists on its node (a shared
    filesystem mounted at the same path), so relative paths the user typed mean the same there.
    """

    def __init__(self, build_worker: Callable[[], ShardWorker], cwd: str, counter: Any = None) -> None:
        from curate.console import quiet_library_progress_bars

        quiet_library_progress_bars()  # weight-loading bars from every worker would flood the driver
        if os.path.isdir(cwd):
            os.chdir(cwd)
        else:
            log.warning("%s does not exist on this node: relative paths will not resolve; pass absolute ones", cwd)
        self.failure: CurateError | None = None
        self.counter = counter
        try:
            self.worker = build_worker()
        except CurateError as exc:  # a user error (a model that cannot load): report it, no restarts
            self.failure = exc

    def ready(self) -> bool:
        """Resolves once the models are loaded: only then is the actor handed a shard."""
        if self.failure is not None:
            raise self.failure
        return True

    def run(self, shard: WorkItem, upcoming: WorkItem | None = None) -> Any:
        advance = ignore_progress if self.counter is None else BatchedReport(self.counter, shard.shard_id)
        return self.worker.run(shard, advance, upcoming)

    def close(self) -> None:
        if self.failure is None:
            self.worker.close()


def workers_that_fit(config: ExecutorConfig, resources: dict[str, float]) -> int:
    """How many workers of the configured size the cluster's total resources hold."""
    needs = {"CPU": config.num_cpus_per_worker, "GPU": config.num_gpus_per_worker}
    fits = [math.floor(resources.get(name, 0.0) / need + 1e-9) for name, need in needs.items() if need > 0]
    return min(fits) if fits else 0


def pool_size(config: ExecutorConfig, resources: dict[str, float], shards: int) -> int:
    """`--concurrency` (or all that fit), never more than there are shards; refuses 0 fits."""
    fits = workers_that_fit(config, resources)
    if fits < 1:
        raise CurateError(
            f"The Ray cluster ({resources.get('CPU', 0):g} CPUs, {resources.get('GPU', 0):g} GPUs) cannot hold "
            f"one worker of {config.num_cpus_per_worker:g} CPUs + {config.num_gpus_per_worker:g} GPUs; "
            "lower --num-cpus-per-worker/--num-gpus-per-worker or add nodes."
        )
    return max(1, min(config.concurrency or fits, shards))


def connect(ray: Any, config: ExecutorConfig, *, quiet: bool) -> None:
    """Attach to `--ray-address` (or RAY_ADDRESS), else start a local instance; reuse one already up."""
    if ray.is_initialized():
        return
    try:
        ray.init(address=config.ray_address, logging_level=logging.WARNING, log_to_driver=not quiet)
    except (ConnectionError, ValueError) as exc:
        raise CurateError(
            f"Could not connect to Ray at {config.ray_address}: {exc}. Start a cluster with `ray start --head` "
            "or fix --ray-address."
        ) from None


class RayExecutor(Executor):
    """Shards over a pool of `ShardActor`s; progress advances batch by batch across the cluster."""

    def run(self, job: ShardJob) -> JobOutcome:
        ray = import_ray()
        connect(ray, self.config, quiet=job.quiet)
        size = pool_size(self.config, ray.cluster_resources(), len(job.shards))
        log.info("ray: %d workers of %g CPUs + %g GPUs for %d shards", size,
                 self.config.num_cpus_per_worker, self.config.num_gpus_per_worker, len(job.shards))
        start = time.perf_counter()
        counter = ray.remote(ProgressCounter).options(num_cpus=0).remote()
        actors = [self._start_actor(ray, job, counter) for _ in range(size)]
        try:
            by_id = self._drive(ray, actors, job, counter)
        finally:
            release(ray, actors)
            ray.kill(counter)
        return JobOutcome([by_id[s.shard_id] for s in job.shards], time.perf_counter() - start)

    def _start_actor(self, ray: Any, job: ShardJob, counter: Any) -> Any:
        cls = ray.remote(ShardActor).options(
            num_cpus=self.config.num_cpus_per_worker, num_gpus=self.config.num_gpus_per_worker,
            max_restarts=self.config.max_retries, max_task_retries=self.config.max_retries,
        )
        return cls.remote(job.build_worker, os.getcwd(), counter)

    def _drive(self, ray: Any, actors: list[Any], job: ShardJob, counter: Any) -> dict[str, Any]:
        """Hand each ready actor one shard at a time until none are left; collect outcomes.

        Between results, the bar is set from the workers' batch counts (`ProgressCounter`)."""
        from curate.console import make_progress

        queue = ShardQueue(job.shards)
        waiting: dict[Any, tuple[int, WorkItem | None]] = {actor.ready.remote(): (i, None) for i, actor in enumerate(actors)}
        done: dict[str, Any] = {}
        finished: dict[str, int] = {}
        with make_progress(unit=job.unit, quiet=job.quiet) as progress:
            task = progress.add_task(f"{job.label} (ray)", total=job.total)
            while waiting:
                ready, _ = ray.wait(list(waiting), num_returns=1, timeout=POLL_SECONDS)
                live = ray.get(counter.snapshot.remote())
                progress.update(task, completed=samples_so_far(finished, live))
                if not ready:
                    continue
                worker, shard = waiting.pop(ready[0])
                outcome = fetch(ray, ready[0], shard)
                if shard is not None:
                    done[shard.shard_id] = outcome
                    finished[shard.shard_id] = outcome.samples
                    progress.update(task, completed=samples_so_far(finished, live),
                                    description=f"{job.label} (ray) {len(done)}/{len(job.shards)} shards")
                assignment = queue.next_for(worker)
                if assignment is not None:
                    waiting[actors[worker].run.remote(*assignment)] = (worker, assignment[0])
        return done


def release(ray: Any, actors: list[Any], *, timeout: float = 30.0) -> None:
    """Let workers stop their decode processes, then end them (dead or stuck ones too)."""
    ray.wait([actor.close.remote() for actor in actors], num_returns=len(actors), timeout=timeout)
    for actor in actors:
        ray.kill(actor)


def fetch(ray: Any, ref: Any, shard: WorkItem | None) -> Any:
    """A shard's outcome; a user error or a worker dead past its retries becomes one clear line."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        if isinstance(exc.cause, CurateError):
            raise CurateError(str(exc.cause)) from None
        raise
    except ray.exceptions.RayActorError as exc:
        what = f"working on shard {shard.shard_id}" if shard is not None else "starting up"
        raise CurateError(
            f"A Ray worker died while {what} and stayed dead after its retries "
            f"(--max-retries): {_first_line(exc)}. Finished shards are kept; rerun to resume."
        ) from None


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
