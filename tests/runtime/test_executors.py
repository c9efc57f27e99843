"""Executor selection and Ray sizing: pure logic, no Ray needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from curate.errors import CurateError
from curate.runtime.executors import EXECUTORS, LocalExecutor, make_executor
from curate.runtime.ray_executor import pool_size, workers_that_fit
from curate.schemas.config.flow import EmbedConfig, ExecutorConfig


def test_executors_are_picked_by_name_and_unknown_names_list_the_known_ones():
    assert isinstance(make_executor(ExecutorConfig()), LocalExecutor)
    assert set(EXECUTORS) == {"local", "ray"}
    with pytest.raises(CurateError, match="known: local, ray"):
        make_executor(ExecutorConfig(name="dask"))
    with pytest.raises(CurateError, match="--executor 'dask'"):
        ExecutorConfig(name="dask").validate()


@pytest.mark.parametrize("bad, match", [
    (dict(concurrency=0), "--concurrency"),
    (dict(max_retries=-1), "--max-retries"),
    (dict(num_cpus_per_worker=0, num_gpus_per_worker=0), "some resource"),
])
def test_bad_executor_options_are_refused(bad, match):
    with pytest.raises(CurateError, match=match):
        ExecutorConfig(name="ray", **bad).validate()


def test_workers_are_sized_by_the_scarcest_resource():
    cluster = {"CPU": 64.0, "GPU": 8.0}
    assert workers_that_fit(ExecutorConfig(num_cpus_per_worker=4, num_gpus_per_worker=1), cluster) == 8
    assert workers_that_fit(ExecutorConfig(num_cpus_per_worker=16, num_gpus_per_worker=1), cluster) == 4
    assert workers_that_fit(ExecutorConfig(num_cpus_per_worker=1, num_gpus_per_worker=0.5), cluster) == 16
    assert pool_size(ExecutorConfig(num_cpus_per_worker=2), cluster, shards=5) == 5  # never more than shards
    assert pool_size(ExecutorConfig(concurrency=3), cluster, shards=100) == 3


def test_a_cluster_without_room_for_one_worker_is_refused():
    with pytest.raises(CurateError, match="0 GPUs"):
        pool_size(ExecutorConfig(num_gpus_per_worker=1), {"CPU": 8.0}, shards=4)


class FakeActorError(Exception):
    pass


class FakeTaskError(Exception):
    def __init__(self, cause: Exception) -> None:
        super().__init__(f"ray::ShardActor.ready() (pid=1)\n  traceback...\n{cause}")
        self.cause = cause


class FakeRay:
    """Just enough of Ray for `fetch`: `get` fails the way a worker dead past its retries does."""

    class exceptions:
        RayActorError = FakeActorError
        RayTaskError = FakeTaskError

    @staticmethod
    def get(ref):
        if isinstance(ref, Exception):
            raise ref
        raise FakeActorError("The actor died unexpectedly before finishing this task.\n  details...")


def test_a_worker_dead_past_its_retries_is_one_line_naming_the_shard():
    from curate.io.formats.base import Shard
    from curate.runtime.ray_executor import fetch

    shard = Shard(path=Path("00001.tar"), format="webdataset", shard_id="00001")
    with pytest.raises(CurateError, match=r"shard 00001 .*--max-retries.*died unexpectedly.*rerun to resume"):
        fetch(FakeRay, object(), shard)


def test_a_user_error_inside_a_worker_arrives_as_its_own_line_and_bugs_keep_their_traceback():
    from curate.runtime.ray_executor import fetch

    with pytest.raises(CurateError) as caught:
        fetch(FakeRay, FakeTaskError(CurateError("Could not load the image processor 'x'.")), None)
    assert str(caught.value) == "Could not load the image processor 'x'."
    with pytest.raises(FakeTaskError):
        fetch(FakeRay, FakeTaskError(ZeroDivisionError("a bug")), None)


def test_ray_missing_gives_an_install_hint(monkeypatch):
    import builtins

    from curate.runtime.ray_executor import import_ray

    real_import = builtins.__import__
    monkeypatch.setattr(builtins, "__import__",
                        lambda name, *a, **k: (_ for _ in ()).throw(ImportError(name)) if name == "ray" else real_import(name, *a, **k))
    with pytest.raises(CurateError, match=r"pip install 'curate\[ray\]'"):
        import_ray()


def test_score_embeds_missing_shards_with_its_executor(sample_shards, tmp_path, monkeypatch):
    """`curate score --executor ray` hands the embedding of new shards to that executor."""
    from types import SimpleNamespace

    from curate.pipelines.score_inputs import shard_embeddings
    from curate.schemas.config.flow import ScoreConfig

    seen = []
    monkeypatch.setattr("curate.pipelines.embed.run_embed", lambda config, quiet, shards=None: seen.append(config))
    from curate.schemas.tables import EncoderInfo

    text = EncoderInfo(model="t", dim=0, kind="text", settings={"pooling": "mean", "max_tokens": 77})
    card = SimpleNamespace(image_encoder=SimpleNamespace(model="i"), text_encoder=text)
    ray = ExecutorConfig(name="ray", num_gpus_per_worker=1, concurrency=4)
    shard_embeddings(sample_shards[:2], ScoreConfig(inputs=tuple(sample_shards[:2]), out=tmp_path, executor=ray),
                     card, quiet=True)
    assert [config.executor for config in seen] == [ray]


def test_the_worker_entry_point_embeds_shards_in_this_process(sample_shards, tiny_encoders, tmp_path):
    """What every executor runs per process; the files are those `run_embed` would write."""
    from curate.io.formats.detect import find_shards
    from curate.pipelines.embed import embed_shards_worker
    from curate.schemas.layout import RunLayout

    shards = find_shards(sample_shards[:2])
    config = EmbedConfig(inputs=tuple(sample_shards[:2]), out=tmp_path, encoders=tiny_encoders, batch_size=5, workers=0)
    results = embed_shards_worker(shards, config)
    assert [(r.shard_id, r.pairs, r.samples) for r in results] == [(s.shard_id, 8, 8) for s in shards]
    assert "load models" in results[0].stages and "load models" not in results[1].stages
    assert [p.stem for p in RunLayout(tmp_path).shard_files("embeddings")] == sorted(s.shard_id for s in shards)


class RecordingCounter:
    """`ProgressCounter` behind the `.remote` call style of a Ray actor handle, run in-process."""

    def __init__(self) -> None:
        from curate.runtime.ray_executor import ProgressCounter

        self.inner = ProgressCounter()
        self.calls = 0
        for name in ("start", "add", "snapshot"):
            method = getattr(self.inner, name)
            setattr(self, name, type("Method", (), {"remote": staticmethod(self._counted(method))})())

    def _counted(self, method):
        def call(*args):
            self.calls += 1
            return method(*args)
        return call


def test_workers_report_batches_to_the_bar_without_a_call_per_sample(monkeypatch):
    import curate.runtime.ray_executor as ray_executor

    clock = iter(range(0, 10_000))
    monkeypatch.setattr(ray_executor.time, "monotonic", lambda: next(clock) * 0.01)  # 10 ms per call
    counter = RecordingCounter()
    report = ray_executor.BatchedReport(counter, "00001")
    for _ in range(500):
        report(1)  # 500 error rows, one sample each
    counts = counter.inner.snapshot()["00001"]
    assert 0 < counts <= 500 and counter.calls < 20  # told every 0.5 s of work, not 500 times
    ray_executor.BatchedReport(counter, "00001")  # the shard retried on a restarted worker
    assert counter.inner.snapshot() == {"00001": 0}


def test_the_cluster_bar_counts_finished_shards_whole_and_running_ones_live():
    from curate.runtime.ray_executor import samples_so_far

    finished = {"a": 100, "b": 80}
    live = {"a": 96, "b": 80, "c": 40, "d": 7}  # a's last batches were not reported before it finished
    assert samples_so_far(finished, live) == 100 + 80 + 40 + 7
    assert samples_so_far({}, {}) == 0


def shards(n: int) -> list:
    from curate.io.formats.base import Shard

    return [Shard(path=Path(f"{i:05d}.tar"), format="webdataset", shard_id=f"{i:05d}") for i in range(n)]


def test_each_worker_is_told_its_next_shard_and_every_shard_runs_once():
    from curate.runtime.ray_executor import ShardQueue

    queue = ShardQueue(shards(5))
    first, second = queue.next_for(0), queue.next_for(1)
    assert [s.shard_id for s in first] == ["00000", "00001"] and [s.shard_id for s in second] == ["00002", "00003"]
    assert queue.next_for(0)[0].shard_id == "00001"  # the one it was told about (and may have prefetched)
    ran = ["00000", "00002", "00001"]
    while (assignment := queue.next_for(1)) is not None:  # worker 0 is slow: worker 1 takes the rest
        ran.append(assignment[0].shard_id)
    assert sorted(ran) == [s.shard_id for s in shards(5)]  # 00004, reserved for worker 0, was taken over
    assert queue.next_for(0) is None


def test_the_local_executor_tells_the_worker_which_shard_comes_next():
    seen = []

    class SpyWorker:
        def run(self, shard, advance, upcoming=None):
            seen.append((shard.shard_id, upcoming.shard_id if upcoming else None))
            return type("Outcome", (), {"shard_id": shard.shard_id, "samples": 0})()

        def close(self):
            pass

    from curate.runtime.jobs import ShardJob

    LocalExecutor(ExecutorConfig()).run(ShardJob(shards(3), SpyWorker, label="spy", quiet=True))
    assert seen == [("00000", "00001"), ("00001", "00002"), ("00002", None)]
