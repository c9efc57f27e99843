"""`embed --executor ray` against a local 2-CPU Ray instance: same files as a local run.

Skipped when Ray is not installed (`pip install 'curate[ray]'`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

import curate.pipelines.embed as embed_module
from curate.io.location import RemotePath
from curate.io.scratch import scratch_root
from curate.pipelines.embed import EmbedWorker, run_embed
from curate.schemas.config.flow import EmbedConfig, ExecutorConfig
from curate.schemas.layout import RunLayout
from curate.schemas.outcome import StepOutcome
from curate.schemas.tables import read_embeddings_info
from tests.pipelines.scene_runs import tiny_projection
from tests.pipelines.test_embed import broken_tar, vectors

ray = pytest.importorskip("ray")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    """One private local Ray instance per module, of 2 CPUs and 2 GPUs that are only declared
    (Ray hands out their ids and sets CUDA_VISIBLE_DEVICES; no GPU is needed). Its workers import
    this test module (the crashing worker below), so the repository goes on the path they
    inherit when Ray starts them; their logs come to this process's stderr, as a user's would."""
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), saved]))
    try:
        ray.init(address="local", num_cpus=2, num_gpus=2, include_dashboard=False, log_to_driver=True)
    finally:
        os.environ.pop("PYTHONPATH") if saved is None else os.environ.__setitem__("PYTHONPATH", saved)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def inputs(sample_shards, tmp_path_factory) -> tuple[Path, ...]:
    """Every format, plus a tar of broken samples so error rows are compared too."""
    folder = tmp_path_factory.mktemp("broken")
    broken_tar(folder / "broken.tar")
    return (*sample_shards, folder / "broken.tar")


@pytest.fixture(scope="module")
def local_run(inputs, tiny_encoders, tmp_path_factory) -> tuple[RunLayout, StepOutcome]:
    config = EmbedConfig(inputs=inputs, out=tmp_path_factory.mktemp("local") / "run", encoders=tiny_encoders,
                         batch_size=3, workers=0)
    return RunLayout(config.out), run_embed(config, quiet=True)


def ray_config(inputs, encoders, out: Path, **executor) -> EmbedConfig:
    return EmbedConfig(inputs=inputs, out=out, encoders=encoders, batch_size=3, workers=0,
                       executor=ExecutorConfig(name="ray", **executor))


def listing(layout: RunLayout) -> list[str]:
    """Every file of the run, hidden temporaries included."""
    return sorted(str(p.relative_to(layout.root)) for p in layout.root.rglob("*") if p.is_file())


def assert_same_outputs(got: RunLayout, want: RunLayout, *, same_sources: bool = True) -> None:
    """Same files and rows; with `same_sources` the schema metadata (which names the sources) too."""
    assert listing(got) == listing(want)
    for path in want.shard_files("embeddings"):
        a, b = pq.read_table(got.embeddings(path.stem)), pq.read_table(path)
        assert a.schema.equals(b.schema, check_metadata=same_sources), path.stem
        assert a.column("key").to_pylist() == b.column("key").to_pylist(), path.stem
        np.testing.assert_allclose(vectors(a, "image_emb"), vectors(b, "image_emb"), atol=2e-3)
        np.testing.assert_allclose(vectors(a, "text_emb"), vectors(b, "text_emb"), atol=2e-3)
        meta = [c for c in b.column_names if c not in ("image_emb", "text_emb")]
        assert a.select(meta).equals(b.select(meta)), path.stem
    for path in want.shard_files("errors"):
        assert error_rows(got.errors(path.stem)) == error_rows(path), path.stem


def error_rows(path: Path) -> list[dict]:
    """Error rows, with object addresses in messages (`<BytesIO at 0x7f..>`) blanked out."""
    rows = pq.read_table(path).to_pylist()
    return [{**row, "message": re.sub(r"0x[0-9a-f]+", "0x", row["message"])} for row in rows]


def assert_same_counts(got: StepOutcome, want: StepOutcome) -> None:
    assert [s.shard_id for s in got.shards] == [s.shard_id for s in want.shards]
    assert got.pairs == want.pairs and got.errors == want.errors
    assert [(s.pairs, s.errors) for s in got.shards] == [(s.pairs, s.errors) for s in want.shards]


def local_folder(out: Path | RemotePath) -> Path:
    """The folder a local path or a `file://` URL names."""
    return Path(out.path) if isinstance(out, RemotePath) else Path(out)


class CrashOnceWorker(EmbedWorker):
    """The first shard any worker of the run meets kills its process after one written batch."""

    def run(self, shard, advance, upcoming=None):
        marker = local_folder(self.config.out).with_name("run.crashed")
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)  # exactly one crash, across processes
        except FileExistsError:
            return super().run(shard, advance, upcoming)
        os.write(fd, f"{shard.shard_id} {os.getpid()}".encode())
        os.close(fd)
        return super().run(shard, lambda n: os._exit(1), upcoming)  # dies mid-shard, its temporaries on disk


@pytest.fixture(scope="module", params=["paths", "urls"])
def ray_run(request, inputs, tiny_encoders, tmp_path_factory) -> tuple[RunLayout, StepOutcome, Path, str]:
    """One Ray run on 2 workers, during which one worker is killed mid-shard (and restarted):
    from and to local paths, then from and to `file://` URLs (each worker copies and uploads).

    One run serves both tests below: starting Ray workers (each imports torch) is what costs.
    """
    out = tmp_path_factory.mktemp("ray") / "run"
    urls = request.param == "urls"
    config = ray_config(tuple(f"file://{p}" for p in inputs) if urls else inputs, tiny_encoders,
                        f"file://{out}" if urls else out, concurrency=2, max_retries=2)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(embed_module, "EmbedWorker", CrashOnceWorker)  # what run_embed hands the executor
        summary = run_embed(config, quiet=True)
    return RunLayout(out), summary, out.parent / "run.crashed", request.param


def test_ray_run_writes_the_same_files_as_a_local_run(ray_run, local_run, inputs, tiny_encoders):
    (got, summary, _, kind), (want, local_summary) = ray_run, local_run
    assert_same_outputs(got, want, same_sources=kind == "paths")
    assert_same_counts(summary, local_summary)
    sources = {read_embeddings_info(pq.read_schema(p)).source for p in got.shard_files("embeddings")}
    assert sources == {f"file://{p}" if kind == "urls" else str(p.resolve()) for p in inputs}
    assert local_summary.errors["decompression_bomb"] == 1 and local_summary.pairs == 4 * 8 + 1
    assert summary.stages["model"] > 0  # stage times travel back from the workers
    again = run_embed(ray_config(inputs, tiny_encoders, got.root), quiet=True)  # resume: all done already
    assert all(s.skipped for s in again.shards)


def test_a_worker_killed_mid_shard_is_restarted_and_nothing_is_lost_or_doubled(ray_run, local_run):
    (got, summary, marker, _), (want, _) = ray_run, local_run
    victim, pid = marker.read_text().split()
    assert not (scratch_root() / pid).exists()  # the dead worker's shard copy and staging were swept
    assert victim in {s.shard_id for s in summary.shards}  # the crash did happen, on this shard
    keys = [k for path in got.shard_files("embeddings") for k in pq.read_table(path).column("key").to_pylist()]
    keys += [k for path in got.shard_files("errors") for k in pq.read_table(path).column("key").to_pylist()]
    want_keys = [k for table in ("embeddings", "errors") for path in want.shard_files(table)
                 for k in pq.read_table(path).column("key").to_pylist()]
    assert len(keys) == len(set(keys)) == summary.pairs + sum(summary.errors.values())
    assert sorted(keys) == sorted(want_keys)
    assert not [p for p in got.root.rglob(".*")]  # the dead attempt's temporaries are gone


@pytest.fixture(scope="module")
def projection(local_run, tmp_path_factory) -> Path:
    return tiny_projection(local_run[0].root, tmp_path_factory.mktemp("projection") / "proj")


def test_score_on_ray_writes_the_same_scores_as_a_local_run(local_run, projection, tmp_path):
    from curate.pipelines.score import run_score
    from curate.schemas.config.flow import ScoreConfig

    runs = {}
    for name in ("local", "ray"):
        config = ScoreConfig(inputs=(local_run[0].root,), projection=projection, out=tmp_path / name, device="cpu",
                             workers=0, executor=ExecutorConfig(name=name, concurrency=1))
        runs[name] = (RunLayout(config.out), run_score(config, quiet=True))
    (got, summary), (want, local_summary) = runs["ray"], runs["local"]
    assert listing(got) == listing(want) and len(want.shard_files("scores")) == 5
    for path in want.shard_files("scores"):
        a, b = pq.read_table(got.scores(path.stem)), pq.read_table(path)
        assert a.schema.equals(b.schema, check_metadata=True), path.stem
        assert a.drop_columns(["similarity"]).equals(b.drop_columns(["similarity"])), path.stem
        np.testing.assert_allclose(a.column("similarity").to_numpy(), b.column("similarity").to_numpy(), atol=1e-5)
    assert [(s.shard_id, s.rows) for s in summary.shards] == [(s.shard_id, s.rows) for s in local_summary.shards]
    assert summary.rows == local_run[1].pairs == 33


class ProbeWorker:
    """A worker that loads nothing: what a Ray worker process looks like from inside. Its
    `device` names the `CURATE_PROBE` variable it found, to show what reached its environment."""

    def __init__(self) -> None:
        self.device = os.environ.get("CURATE_PROBE", "unset")

    def close(self):
        pass


def test_a_worker_sees_only_the_gpus_it_reserved_and_the_environment_the_driver_passed():
    """Ray narrows CUDA_VISIBLE_DEVICES for a worker that reserves a GPU; one that reserves none
    would see them all (and put its model on cuda:0) unless the worker hides them. Variables
    given with --ray-env reach the worker through its runtime_env, not the node's environment."""
    from curate.runtime.jobs import ShardJob
    from curate.runtime.ray_cluster import WorkerShape
    from curate.runtime.ray_executor import RayExecutor

    job = ShardJob([], ProbeWorker, label="probe", quiet=True)
    executor = RayExecutor(ExecutorConfig(name="ray", ray_env=("CURATE_PROBE=from-the-driver",)))
    actors = {gpus: executor.start_actor(ray, job, WorkerShape(cpus=0, gpus=gpus)) for gpus in (0, 1)}
    try:
        seen = dict(zip(actors, ray.get([a.ready.remote() for a in actors.values()])))
    finally:
        for actor in actors.values():
            ray.kill(actor)
    assert seen[0].gpus == "" and seen[1].gpus in ("0", "1")
    assert seen[0].device == seen[1].device == "from-the-driver" and "CURATE_PROBE" not in os.environ


def test_a_concurrency_above_what_fits_is_capped_and_the_run_ends_with_a_bar_that_agrees_with_the_summary(
        inputs, tiny_encoders, tmp_path, terminal, capfd):
    """3 workers asked of 2 CPUs: 2 start, one line says so; nothing waits for the third.
    Each worker says where it runs (its own GPU of the two declared); its logs reach the driver."""
    from curate.cli.summaries import embed_table
    from curate.console import stdout

    config = ray_config(inputs[:3], tiny_encoders, tmp_path / "run", concurrency=3)
    summary = run_embed(config, quiet=False)
    assert summary.pairs == 3 * 8 and not summary.errors
    assert any(line.startswith("--concurrency 3 is more workers than the cluster holds: 2 of 1 CPUs + 1 GPUs fit")
               for line in terminal.lines)
    assert "ray: 2 workers of 1 CPUs + 1 GPUs for 3 shards" in terminal.lines
    # one line per worker that came up; a worker still loading when the shards ran out is not waited for
    ready = [line for line in terminal.lines if line.startswith("ray worker ")]
    gpus = [line.split(", ")[1].split(";")[0] for line in ready]
    assert 1 <= len(ready) <= 2 and len(set(gpus)) == len(gpus) and set(gpus) <= {"GPU 0", "GPU 1"}
    assert all(": cpu, GPU" in line for line in ready)
    assert any(line.startswith("ray: using the Ray instance") for line in terminal.lines)
    with stdout.capture() as table:
        stdout.print(embed_table(summary))
    total = re.search(r"total .*?([\d,.]+) \S*$", table.get().strip().splitlines()[-2])
    assert total is not None and terminal.final_rate() == total.group(1) == f"{summary.pairs_per_second:,.1f}"
    assert "encoders on cpu" in forwarded_stderr(capfd, "encoders on cpu")  # a worker's own line


def forwarded_stderr(capfd, wanted: str, *, patience: float = 60.0) -> str:
    """This process's stderr until `wanted` shows up: Ray forwards workers' lines from a
    background thread, a few seconds behind (a liveness bound, not a measure of speed)."""
    import time

    seen, deadline = "", time.monotonic() + patience
    while wanted not in seen and time.monotonic() < deadline:
        seen += capfd.readouterr().err
        time.sleep(0.2)
    return seen
