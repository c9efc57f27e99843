"""The Ray cluster a run uses: which one is joined and why, what fits on its nodes, what workers get.

A user moving from one machine to a cluster must never wonder where the work went or wait on
something that cannot happen, so this module says in one line which cluster was joined and
why (an address given, `RAY_ADDRESS`, the cluster `ray start` recorded on this node, or a
private local instance), turns every failure to connect into one line with its fix, and
sizes the worker pool from what each node holds: a worker is placed on one node, so a
cluster of many small nodes can have CPUs to spare in total and still no room for one.

Ray itself is imported by the caller (`ray_executor.import_ray`) and passed in, so this
module imports without it.
"""

from __future__ import annotations

import logging
import math
import os
import socket
from collections import Counter
from dataclasses import dataclass
from typing import Any

from curate.errors import CurateError
from curate.schemas.config.flow import ExecutorConfig

log = logging.getLogger("curate")
REACHABLE_SECONDS = 5.0  # a head that does not accept a TCP connection by then is not there
AUTH_MODE = "RAY_AUTH_MODE"
LOCAL = "local"


@dataclass(frozen=True)
class Target:
    """What `ray.init` is given, the head to check first (None: a new local instance), and why."""

    address: str
    head: str | None
    why: str


def choose_target(ray_address: str | None) -> Target:
    """The cluster to join, as Ray would pick it, with the reason the user will be told.

    Unset: `RAY_ADDRESS`, else the cluster `ray start` recorded on this node, else a new local
    instance (`ray.init`'s own order). `local` always starts a private instance, `auto`
    insists on an existing one.
    """
    if ray_address == LOCAL:
        return Target(LOCAL, None, "--ray-address local")
    if ray_address and ray_address.startswith("ray://"):
        return Target(ray_address, ray_address[len("ray://"):], f"--ray-address {ray_address}")
    head = _bootstrap_address(ray_address)
    if head is None:
        return Target(LOCAL, None, "no --ray-address, no RAY_ADDRESS and no cluster recorded on this node")
    return Target(head, head, _reason(ray_address))


def _reason(ray_address: str | None) -> str:
    env = os.environ.get("RAY_ADDRESS")
    if ray_address not in (None, "auto"):
        return f"--ray-address {ray_address}"
    if env:
        return f"RAY_ADDRESS={env}"
    how = "--ray-address auto: " if ray_address == "auto" else ""
    return f"{how}the cluster `ray start` recorded on this node; --ray-address local starts a private one instead"


def _bootstrap_address(ray_address: str | None) -> str | None:
    """host:port of the cluster Ray would join, or None where it would start a local one."""
    from ray._private.services import canonicalize_bootstrap_address

    try:
        return canonicalize_bootstrap_address(ray_address)
    except ConnectionError:  # `auto` found nothing
        raise CurateError(
            "--ray-address auto found no running Ray cluster on this node: start one with `ray start --head`, "
            "give its address (--ray-address HEAD:6379), or leave --ray-address unset to start a local one."
        ) from None
    except ValueError as exc:
        raise CurateError(f"--ray-address {ray_address} is not HOST:PORT, auto or local ({exc}).") from None


def check_reachable(target: Target, *, timeout: float = REACHABLE_SECONDS) -> None:
    """Fail in seconds, in one line, where nothing listens at the head's address.

    `ray.init` retries an unreachable head for minutes while printing C++ warnings; a plain
    TCP connection answers the same question at once.
    """
    if target.head is None:
        return
    host, _, port = target.head.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            return
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
        raise CurateError(
            f"No Ray cluster answers at {target.head} ({target.why}): {reason}. Start its head there "
            f"(`ray start --head --port {port or 6379}`), fix --ray-address or RAY_ADDRESS, or pass "
            "--ray-address local to run on a private local instance."
        ) from None


def connect(ray: Any, config: ExecutorConfig, *, quiet: bool) -> str:
    """Join the chosen cluster (or reuse the one this process already joined); returns the line
    that says which one and why."""
    if ray.is_initialized():
        return "ray: using the Ray instance this process already joined"
    target = choose_target(config.ray_address)
    check_reachable(target)
    try:  # Ray's own logs: warnings only, none at all with --quiet (workers' lines included)
        ray.init(address=target.address, logging_level=logging.ERROR if quiet else logging.WARNING,
                 log_to_driver=not quiet)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise CurateError(f"Could not join the Ray cluster at {target.head} ({target.why}): {first_line(exc)}. "
                          "Check that the cluster runs the same Ray and Python versions as this machine.") from None
    if target.head is None:
        return f"ray: started a local Ray instance for this run ({target.why}): {describe(nodes_of(ray))}"
    return f"ray: joined the cluster at {target.head} ({target.why}): {describe(nodes_of(ray))}"


def worker_start_failure(exc: BaseException, *, auth_was_set: bool) -> CurateError:
    """A Ray process could not even start on the cluster: one line, with the likely fix.

    The usual cause: this machine holds a Ray token (`~/.ray/auth_token`), so a driver that
    found its cluster by itself (no address, or `auto`) turned token authentication on,
    while the cluster was started without it; Ray then reports only that the actor died.
    """
    hint = "Check `ray status` and the Ray logs of the head node."
    if os.environ.get(AUTH_MODE, "").lower() == "token":
        why = ("this machine holds a Ray token, so token authentication was turned on for this run"
               if not auth_was_set else f"{AUTH_MODE}=token is set here")
        hint = (f"Likely cause: {why}, and the cluster was started without it: run with {AUTH_MODE}=disabled, "
                f"or restart the cluster with {AUTH_MODE}=token. {hint}")
    return CurateError(f"Joined the Ray cluster but could not start a process on it ({first_line(exc)}). {hint}")


@dataclass(frozen=True)
class Node:
    """One alive node of the cluster, as far as sizing is concerned."""

    address: str
    cpus: float
    gpus: float


def nodes_of(ray: Any) -> list[Node]:
    """The cluster's alive nodes and what each one holds in total."""
    return [Node(n.get("NodeManagerAddress", "?"), n["Resources"].get("CPU", 0.0), n["Resources"].get("GPU", 0.0))
            for n in ray.nodes() if n.get("Alive")]


def describe(nodes: list[Node]) -> str:
    """`2 nodes: 1 × 16 CPUs + 8 GPUs, 1 × 4 CPUs + 0 GPUs`: the shapes that sizing reasons about."""
    shapes = Counter((n.cpus, n.gpus) for n in nodes)
    parts = [f"{count} × {cpus:g} CPUs + {gpus:g} GPUs" for (cpus, gpus), count in shapes.most_common()]
    return f"{len(nodes)} node{'s' if len(nodes) != 1 else ''}: " + ", ".join(parts)


@dataclass(frozen=True)
class WorkerShape:
    """What one worker reserves on the node it is placed on."""

    cpus: float
    gpus: float

    def __str__(self) -> str:
        return f"{self.cpus:g} CPUs + {self.gpus:g} GPUs"


def worker_shape(config: ExecutorConfig, nodes: list[Node]) -> WorkerShape:
    """The configured reservation; an unset GPU count is one GPU per worker where the cluster has
    GPUs (one model copy per GPU), else none."""
    gpus = config.num_gpus_per_worker
    if gpus is None:
        gpus = 1.0 if any(n.gpus > 0 for n in nodes) else 0.0
    if config.num_cpus_per_worker == 0 and gpus == 0:
        raise CurateError("A Ray worker needs some resource, and this cluster has no GPUs: "
                          "give --num-cpus-per-worker above 0.")
    return WorkerShape(config.num_cpus_per_worker, gpus)


def fits_on(node: Node, shape: WorkerShape) -> int:
    """Workers of `shape` one node holds (a worker never spans nodes)."""
    limits = [math.floor(have / need + 1e-9) for have, need in ((node.cpus, shape.cpus), (node.gpus, shape.gpus))
              if need > 0]
    return min(limits) if limits else 0


def pool_size(config: ExecutorConfig, nodes: list[Node], shape: WorkerShape, shards: int) -> int:
    """`--concurrency` (or all that fit), capped at what the nodes hold and at the shard count.

    Refuses a cluster where no node holds one worker; a `--concurrency` above what fits is
    capped with one line saying what fits where, since a worker no node can hold would never
    start and the run would wait for it forever.
    """
    fits = sum(fits_on(node, shape) for node in nodes)
    if fits < 1:
        raise CurateError(
            f"No node of the Ray cluster can hold one worker of {shape} ({describe(nodes)}); "
            "lower --num-cpus-per-worker/--num-gpus-per-worker or add a larger node."
        )
    wanted = config.concurrency or fits
    if wanted > fits:
        log.warning("--concurrency %d is more workers than the cluster holds: %d of %s fit (%s); starting %d.",
                    wanted, fits, shape, describe(nodes), min(fits, shards))
    return max(1, min(wanted, fits, shards))


def runtime_env(config: ExecutorConfig) -> dict[str, Any] | None:
    """The environment Ray builds for every worker: `--ray-env` variables (a bare NAME takes this
    machine's value, so a secret never appears on the command line) and `--ray-pip` packages."""
    env: dict[str, Any] = {}
    variables = {}
    for item in config.ray_env:
        name, given, value = item.partition("=")
        variables[name] = value if given else os.environ[name]  # presence checked with the options
    if variables:
        env["env_vars"] = variables
    if config.ray_pip:
        env["pip"] = list(config.ray_pip)
    return env or None


def first_line(exc: BaseException) -> str:
    """The first non-blank line of an exception's message (Ray's run to many lines)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
