"""Executors by name: `local` (this process) and `ray` (a cluster); see `runtime/jobs.py`.

Steps never branch on the executor's name: they build a `ShardJob` and call
`make_executor(config).run(job)`. Ray is imported only inside `RayExecutor`'s methods, so
`local` runs never need it installed.
"""

from __future__ import annotations

from curate.runtime.jobs import Executor, JobOutcome, ShardJob
from curate.runtime.ray_executor import RayExecutor
from curate.schemas.config.flow import EXECUTOR_NAMES, ExecutorConfig


class LocalExecutor(Executor):
    """One worker in this process, shards in order, progress per batch."""

    def run(self, job: ShardJob) -> JobOutcome:
        from curate.console import RunBar

        results = []
        with RunBar(job.label, unit=job.unit, total=job.total, quiet=job.quiet) as bar:
            bar.say("loading models")
            worker = job.build_worker()
            try:
                for shard, upcoming in zip(job.shards, [*job.shards[1:], None]):
                    bar.say(shard.shard_id)
                    results.append(worker.run(shard, bar.advance, upcoming))
                seconds = bar.stop()
            finally:
                worker.close()
        return JobOutcome(results, seconds)


EXECUTORS: dict[str, type[Executor]] = {"local": LocalExecutor, "ray": RayExecutor}
assert tuple(EXECUTORS) == EXECUTOR_NAMES, "the --executor names and the registry must agree"


def make_executor(config: ExecutorConfig) -> Executor:
    """The executor `config.name` names, or a one-line refusal listing the known ones."""
    from curate.io.formats.base import lookup

    return lookup(EXECUTORS, config.name, "executor")(config)
