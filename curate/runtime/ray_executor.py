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

What the user sees: which cluster was joined and why, how many workers fit where
(`ray_cluster.py`), one line per worker as it comes up (node, GPU, device), and one bar whose
rate is pairs over the run's own clock, the figure the summary reports. A worker that no
node can start is never waited for: the run ends when the shards are done.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from curate.errors import CurateError
from curate.runtime.jobs import (
    Executor,
    JobOutcome,
    ShardJob,
    ShardWorker,
    WorkItem,
    ignore_progress,
)
from curate.runtime.ray_cluster import (
    AUTH_MODE,
    WorkerShape,
    connect,
    first_line,
    nodes_of,
    pool_size,
    runtime_env,
    worker_shape,
    worker_start_failure,
)
from curate.schemas.outcome import ShardOutcome

if TYPE_CHECKING:  # annotations only: the console imports rich
    from curate.console import RunBar

log = logging.getLogger("curate")
POLL_SECONDS = 0.5  # how often the driver's bar reads the workers' batch counts
START_SECONDS = 120.0  # a process of zero CPUs that has not started by then never will
SLOW_START_SECONDS = 120.0  # no worker up by then: say why the bar has not moved
RAY_HINT = "The ray executor needs Ray on this machine and every node: pip install 'curate[ray]'."
NOSET_GPUS = "RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES"  # Ray's switch for users who place GPUs themselves


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

    def __bool__(self) -> bool:
        """Whether shards are left to hand out (queued or reserved)."""
        return bool(self.queue or self.reserved)


def samples_so_far(finished: dict[str, int], live: dict[str, int]) -> int:
    """The bar's position: final counts of finished shards, live counts of the others."""
    return sum(finished.values()) + sum(n for shard_id, n in live.items() if shard_id not in finished)


@dataclass(frozen=True)
class WorkerReady:
    """What a worker reports once its models are loaded: where it runs and on what."""

    node: str
    pid: int
    gpus: str  # CUDA_VISIBLE_DEVICES as the worker sees it; "" is none
    device: str
    seconds: float  # from the process taking the actor to models loaded

    def line(self, index: int, size: int) -> str:
        gpus = f"GPU {self.gpus}" if self.gpus else "no GPU"
        return (f"ray worker {index}/{size} on {self.node} (pid {self.pid}): {self.device}, {gpus}; "
                f"ready in {self.seconds:.1f} s")


def show_only_reserved_gpus(ray: Any) -> str:
    """Make CUDA see exactly the GPUs Ray reserved for this worker, none when it reserved none.

    Ray narrows CUDA_VISIBLE_DEVICES for a worker that reserves GPUs but leaves it alone for
    one that reserves none, which then sees every GPU and puts its model on cuda:0, beside
    the workers that did reserve it. Must run before torch initialises CUDA."""
    if os.environ.get(NOSET_GPUS):
        return os.environ.get("CUDA_VISIBLE_DEVICES", "all")
    visible = ",".join(str(gpu) for gpu in ray.get_gpu_ids())
    os.environ["CUDA_VISIBLE_DEVICES"] = visible
    return visible


class ShardActor:
    """The body of one Ray worker: builds the step's worker once, then runs shard after shard.

    It works in the driver's working directory when that exists on its node (a shared
    filesystem mounted at the same path), so relative paths the user typed mean the same there.
    """

    def __init__(self, build_worker: Callable[[], ShardWorker], cwd: str, quiet: bool = False) -> None:
        import ray

        from curate.console import setup_worker_logging

        start = time.perf_counter()
        setup_worker_logging(quiet=quiet)  # Ray forwards the worker's stderr to the driver
        self.gpus = show_only_reserved_gpus(ray)
        if os.path.isdir(cwd):
            os.chdir(cwd)
        else:
            log.warning("%s does not exist on this node: relative paths will not resolve; pass absolute ones", cwd)
        self.failure: CurateError | None = None
        self.node = ray.util.get_node_ip_address()
        try:
            self.worker = build_worker()
        except CurateError as exc:  # a user error (a model that cannot load): report it, no restarts
            self.failure = exc
        self.seconds = time.perf_counter() - start

    def ready(self) -> WorkerReady:
        """Resolves once the models are loaded: only then is the actor handed a shard."""
        if self.failure is not None:
            raise self.failure
        return WorkerReady(self.node, os.getpid(), self.gpus, str(self.worker.device), self.seconds)

    def run(self, shard: WorkItem, upcoming: WorkItem | None = None, counter: Any = None) -> Any:
        """One shard; `counter` (the `ProgressCounter`) comes with each call rather than with the
        constructor, whose arguments Ray could not restore when it restarts a dead worker."""
        advance = ignore_progress if counter is None else BatchedReport(counter, shard.shard_id)
        return self.worker.run(shard, advance, upcoming)

    def close(self) -> None:
        if self.failure is None:
            self.worker.close()


class RayExecutor(Executor):
    """Shards over a pool of `ShardActor`s; progress advances batch by batch across the cluster."""

    def run(self, job: ShardJob) -> JobOutcome:
        from curate.console import RunBar

        ray = import_ray()
        auth_was_set = AUTH_MODE in os.environ  # before `connect`, where Ray may turn it on
        log.info(connect(ray, self.config, quiet=job.quiet))
        nodes = nodes_of(ray)
        shape = worker_shape(self.config, nodes)
        size = pool_size(self.config, nodes, shape, len(job.shards))
        log.info("ray: %d worker%s of %s for %d shards", size, "s" if size != 1 else "", shape, len(job.shards))
        counter = start_counter(ray, auth_was_set=auth_was_set)
        actors: list[Any] = []
        dispatch = ShardDispatch(ray, job, actors, counter)
        try:
            with RunBar(f"{job.label} (ray)", unit=job.unit, total=job.total, quiet=job.quiet) as bar:
                actors += [self.start_actor(ray, job, shape) for _ in range(size)]
                dispatch.run(bar)
                seconds = bar.stop()
        finally:
            release(ray, actors, started=dispatch.started)
            ray.kill(counter)
        return JobOutcome([dispatch.done[s.shard_id] for s in job.shards], seconds)

    def start_actor(self, ray: Any, job: ShardJob, shape: WorkerShape) -> Any:
        """One worker of `shape`, with the `--ray-env`/`--ray-pip` environment; returns its handle
        at once (Ray places it when a node has room)."""
        cls = ray.remote(ShardActor).options(
            num_cpus=shape.cpus, num_gpus=shape.gpus, runtime_env=runtime_env(self.config),
            max_restarts=self.config.max_retries, max_task_retries=self.config.max_retries,
        )
        return cls.remote(job.build_worker, os.getcwd(), job.quiet)


def start_counter(ray: Any, *, auth_was_set: bool) -> Any:
    """The bar's counter actor, once it answers: the first process the run starts on the cluster,
    so a cluster where none can start fails here, in one line, not as a traceback later."""
    counter = ray.remote(ProgressCounter).options(num_cpus=0).remote()
    try:
        ray.get(counter.snapshot.remote(), timeout=START_SECONDS)
    except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError) as exc:
        ray.kill(counter)
        raise worker_start_failure(exc, auth_was_set=auth_was_set) from None
    return counter


class ShardDispatch:
    """The driver's loop: wait for workers to come up, keep one shard in flight per worker.

    Workers still starting are waited for only while shards are left to give them, so one
    that never gets a place (its node is busy with another job) cannot hold the run up."""

    def __init__(self, ray: Any, job: ShardJob, actors: list[Any], counter: Any) -> None:
        self.ray, self.job, self.actors, self.counter = ray, job, actors, counter
        self.queue = ShardQueue(job.shards)
        self.starting: dict[Any, int] = {}  # ready() ref -> worker index
        self.running: dict[Any, tuple[int, WorkItem]] = {}  # run() ref -> (worker, shard)
        self.started: set[int] = set()
        self.done: dict[str, ShardOutcome] = {}
        self.finished: dict[str, int] = {}  # shard -> final sample count, for the bar

    def run(self, bar: RunBar) -> None:
        self.starting = {actor.ready.remote(): i for i, actor in enumerate(self.actors)}
        bar.say(f"starting {len(self.actors)} worker{'s' if len(self.actors) != 1 else ''} (loading models)")
        begun, warned = time.monotonic(), False
        while self.running or (self.starting and self.queue):
            ready, _ = self.ray.wait([*self.running, *self.starting], num_returns=1, timeout=POLL_SECONDS)
            live = self.ray.get(self.counter.snapshot.remote())
            bar.set(samples_so_far(self.finished, live))
            for ref in ready:
                if ref in self.starting:
                    self._started(ref)
                else:
                    self._finished(ref)
                bar.say(self._status())
            if not self.started and not warned and time.monotonic() - begun > SLOW_START_SECONDS:
                log.warning("no Ray worker has started after %.0f s: other jobs may hold the resources they "
                            "reserve, or --ray-pip packages are still installing (`ray status` shows what waits)",
                            SLOW_START_SECONDS)
                warned = True
        bar.set(sum(self.finished.values()))

    def _started(self, ref: Any) -> None:
        worker = self.starting.pop(ref)
        info = fetch(self.ray, ref, None)
        if not isinstance(info, WorkerReady):  # the node imported another curate than this driver's
            raise CurateError(
                f"A Ray worker runs another version of curate than this machine (it answered {info!r} when ready): "
                "install the same curate on every node, or pass its location with --ray-env PYTHONPATH=... or "
                "--ray-pip.")
        self.started.add(worker)
        log.info(info.line(len(self.started), len(self.actors)))
        self._assign(worker)

    def _finished(self, ref: Any) -> None:
        worker, shard = self.running.pop(ref)
        outcome = fetch(self.ray, ref, shard)
        self.done[shard.shard_id] = outcome
        self.finished[shard.shard_id] = outcome.samples
        self._assign(worker)

    def _assign(self, worker: int) -> None:
        assignment = self.queue.next_for(worker)
        if assignment is not None:
            ref = self.actors[worker].run.remote(*assignment, self.counter)
            self.running[ref] = (worker, assignment[0])

    def _status(self) -> str:
        shards = f"{len(self.done)}/{len(self.job.shards)} shards"
        if len(self.started) == len(self.actors):
            return shards
        return f"{shards}, {len(self.started)}/{len(self.actors)} workers up"


def release(ray: Any, actors: list[Any], *, started: set[int], timeout: float = 30.0) -> None:
    """Let started workers stop their decode processes, then end every worker (those still
    waiting for a place, dead or stuck ones too)."""
    closing = [actors[i].close.remote() for i in sorted(started)]
    if closing:
        ray.wait(closing, num_returns=len(closing), timeout=timeout)
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
            f"(--max-retries): {first_line(exc)}. Finished shards are kept; rerun to resume."
        ) from None
