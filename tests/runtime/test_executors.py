"""Executor selection, Ray sizing, connecting and worker environments: logic tested without a cluster."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from curate.errors import CurateError
from curate.runtime.executors import EXECUTORS, LocalExecutor, make_executor
from curate.runtime.ray_cluster import pool_size, runtime_env, worker_shape
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


def nodes(*shapes: tuple[float, float]) -> list:
    from curate.runtime.ray_cluster import Node

    return [Node(f"10.0.0.{i}", cpus, gpus) for i, (cpus, gpus) in enumerate(shapes, 1)]


def sized(config: ExecutorConfig, cluster: list, shards: int) -> int:
    return pool_size(config, cluster, worker_shape(config, cluster), shards)


def test_workers_are_sized_by_the_scarcest_resource_of_each_node():
    one_node = nodes((64, 8))
    assert sized(ExecutorConfig(num_cpus_per_worker=4, num_gpus_per_worker=1), one_node, 100) == 8
    assert sized(ExecutorConfig(num_cpus_per_worker=16, num_gpus_per_worker=1), one_node, 100) == 4
    assert sized(ExecutorConfig(num_cpus_per_worker=1, num_gpus_per_worker=0.5), one_node, 100) == 16
    assert sized(ExecutorConfig(num_cpus_per_worker=2), one_node, shards=5) == 5  # never more than shards
    assert sized(ExecutorConfig(concurrency=3), one_node, shards=100) == 3
    # 3 CPUs on each of two nodes hold one worker of 2 CPUs each, not the 3 the 6 CPUs would suggest
    assert sized(ExecutorConfig(num_cpus_per_worker=2, num_gpus_per_worker=0), nodes((3, 0), (3, 0)), 100) == 2


def test_a_cluster_without_room_for_one_worker_is_refused():
    with pytest.raises(CurateError, match="0 GPUs"):
        sized(ExecutorConfig(num_gpus_per_worker=1), nodes((8, 0)), shards=4)


def test_a_cluster_with_room_in_total_but_on_no_single_node_is_refused_naming_the_nodes():
    refusal = r"No node .* one worker of 3 CPUs \+ 0 GPUs \(2 nodes: 2 × 2 CPUs \+ 0 GPUs\)"
    with pytest.raises(CurateError, match=refusal):
        sized(ExecutorConfig(num_cpus_per_worker=3), nodes((2, 0), (2, 0)), shards=4)


def test_a_concurrency_above_what_fits_is_capped_with_one_line_saying_what_fits_where():
    import logging

    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    logging.getLogger("curate").addHandler(handler)
    try:
        assert sized(ExecutorConfig(concurrency=3), nodes((2, 0)), shards=10) == 2
    finally:
        logging.getLogger("curate").removeHandler(handler)
    assert lines == ["--concurrency 3 is more workers than the cluster holds: 2 of 1 CPUs + 0 GPUs fit "
                     "(1 node: 1 × 2 CPUs + 0 GPUs); starting 2."]


def test_workers_reserve_one_gpu_each_by_default_where_the_cluster_has_gpus():
    assert worker_shape(ExecutorConfig(), nodes((16, 8), (16, 0))).gpus == 1
    assert worker_shape(ExecutorConfig(), nodes((16, 0))).gpus == 0
    assert worker_shape(ExecutorConfig(num_gpus_per_worker=0), nodes((16, 8))).gpus == 0  # asked for: kept
    assert sized(ExecutorConfig(num_cpus_per_worker=4), nodes((64, 8)), shards=100) == 8  # one per GPU
    with pytest.raises(CurateError, match="no GPUs: give --num-cpus-per-worker above 0"):
        worker_shape(ExecutorConfig(num_cpus_per_worker=0), nodes((16, 0)))


def test_worker_environment_comes_from_ray_env_and_ray_pip(monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cret")
    config = ExecutorConfig(name="ray", ray_env=("AWS_SECRET_ACCESS_KEY", "HF_HUB_OFFLINE=1"), ray_pip=("s3fs>=2024",))
    config.validate()
    assert runtime_env(config) == {"env_vars": {"AWS_SECRET_ACCESS_KEY": "s3cret", "HF_HUB_OFFLINE": "1"},
                                   "pip": ["s3fs>=2024"]}
    assert runtime_env(ExecutorConfig(name="ray")) is None
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(CurateError, match="--ray-env AWS_SECRET_ACCESS_KEY: .* not set on this machine"):
        config.validate()
    with pytest.raises(CurateError, match="--ray-env '1X=2' is not NAME=VALUE"):
        ExecutorConfig(ray_env=("1X=2",)).validate()


def closed_port() -> int:
    """A port nothing listens on: bound, then released."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_address_where_nothing_listens_fails_at_once_in_one_line_without_calling_ray(monkeypatch):
    from curate.runtime.ray_cluster import connect

    class NoRay:
        def is_initialized(self):
            return False

        def init(self, **_):
            raise AssertionError("ray.init must not be tried: it retries an unreachable head for minutes")

    port = closed_port()
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with pytest.raises(CurateError) as caught:
        connect(NoRay(), ExecutorConfig(name="ray", ray_address=f"127.0.0.1:{port}"), quiet=True)
    message = str(caught.value)
    assert "\n" not in message and f":{port} (--ray-address 127.0.0.1:{port}): " in message  # Ray names the host by IP
    assert "ray start --head" in message and "--ray-address local" in message


def test_which_cluster_is_joined_and_why(monkeypatch, tmp_path):
    pytest.importorskip("ray")
    from curate.runtime.ray_cluster import choose_target

    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))  # where `ray start` records its cluster
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert choose_target("local").head is None
    assert "no cluster recorded on this node" in choose_target(None).why
    (tmp_path / "ray").mkdir()
    (tmp_path / "ray" / "ray_current_cluster").write_text("10.1.2.3:6379")
    recorded = choose_target(None)
    assert recorded.head == "10.1.2.3:6379" and "`ray start` recorded on this node" in recorded.why
    assert "--ray-address local starts a private one" in recorded.why
    monkeypatch.setenv("RAY_ADDRESS", "10.9.9.9:6379")
    assert choose_target(None) == choose_target(None).__class__("10.9.9.9:6379", "10.9.9.9:6379",
                                                                "RAY_ADDRESS=10.9.9.9:6379")
    assert choose_target("10.4.4.4:7000").why == "--ray-address 10.4.4.4:7000"


def test_the_model_gets_the_cores_the_process_may_use(monkeypatch):
    import torch

    from curate.runtime.threads import give_model_the_usable_cores, usable_cores

    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # a Ray worker of 1 CPU gets this set
    assert usable_cores() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "100000")  # more than the machine: the affinity wins
    assert usable_cores() == len(os.sched_getaffinity(0))
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert 1 <= usable_cores() <= (os.cpu_count() or 1)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert give_model_the_usable_cores() == torch.get_num_threads() == usable_cores()
    finally:
        torch.set_num_threads(before)


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


def test_the_bar_counts_model_loading_and_ends_on_the_summary_rate(sample_shards, tiny_encoders, tmp_path, terminal):
    from curate.cli.summaries import embed_table
    from curate.console import stdout
    from curate.pipelines.embed import run_embed

    config = EmbedConfig(inputs=tuple(sample_shards[:2]), out=tmp_path, encoders=tiny_encoders, batch_size=3, workers=0)
    summary = run_embed(config, quiet=False)
    assert summary.seconds > summary.stages["load models"] > 0  # the wait counts in the run's time
    with stdout.capture() as table:
        stdout.print(embed_table(summary))
    total = table.get().strip().splitlines()[-2].split()[-2]
    assert terminal.final_rate() == total == f"{summary.pairs_per_second:,.1f}"


class DeadOnArrival:
    """`ray.remote(cls).options(...).remote()`, then `handle.snapshot.remote()`: a handle whose
    process never started, as on a cluster that refuses this driver's token."""

    def options(self, **_):
        return self

    def remote(self, *_):
        return self

    @property
    def snapshot(self):
        return self


class RayWhereNothingStarts(FakeRay):
    class exceptions(FakeRay.exceptions):
        GetTimeoutError = TimeoutError

    @staticmethod
    def remote(cls):
        return DeadOnArrival()

    @staticmethod
    def get(ref, timeout=None):
        raise FakeActorError("The actor died unexpectedly before finishing this task.\n class_name: ProgressCounter")

    @staticmethod
    def kill(handle):
        pass


def test_a_cluster_where_no_process_can_start_is_one_line_with_the_token_fix(monkeypatch):
    from curate.runtime.ray_executor import start_counter

    monkeypatch.setenv("RAY_AUTH_MODE", "token")  # what Ray sets when it finds a token on this machine
    with pytest.raises(CurateError) as caught:
        start_counter(RayWhereNothingStarts, auth_was_set=False)
    assert "\n" not in str(caught.value)
    assert "died unexpectedly" in str(caught.value) and "RAY_AUTH_MODE=disabled" in str(caught.value)
    assert "this machine holds a Ray token" in str(caught.value)
    with pytest.raises(CurateError) as caught:
        start_counter(RayWhereNothingStarts, auth_was_set=True)  # the user chose token auth
    assert "RAY_AUTH_MODE=token is set here" in str(caught.value) and "ray status" in str(caught.value)
    monkeypatch.delenv("RAY_AUTH_MODE")
    with pytest.raises(CurateError) as caught:
        start_counter(RayWhereNothingStarts, auth_was_set=False)  # no token involved: no such guess
    assert "RAY_AUTH_MODE" not in str(caught.value) and "ray status" in str(caught.value)


def test_a_worker_running_another_curate_is_refused_in_one_line():
    """Seen on a `ray start` node whose environment imported an older install: its `ready`
    answered True, and the driver failed on an attribute of the answer."""
    from curate.runtime.jobs import ShardJob
    from curate.runtime.ray_executor import ShardDispatch

    class OldWorkers(FakeRay):
        @staticmethod
        def get(ref):
            return True  # what an older ShardActor.ready returned

    dispatch = ShardDispatch(OldWorkers, ShardJob(shards(2), object, label="embed"), actors=[object()], counter=None)
    dispatch.starting = {"ready-ref": 0}
    with pytest.raises(CurateError, match=r"^A Ray worker runs another version of curate .* --ray-env PYTHONPATH"):
        dispatch._started("ready-ref")
