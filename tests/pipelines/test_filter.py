"""`curate filter`: the same selection DuckDB gives, bytes untouched, manifests that add up,
subsets that `curate embed` takes again, and one-line refusals."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from curate.cli.app import app
from curate.errors import CurateError
from curate.io.formats.detect import find_shards, reader_for
from curate.io.formats.naming import member_of, strip_image_extension
from curate.pipelines.embed import run_embed
from curate.pipelines.filter import run_filter
from curate.schemas.config.flow import EmbedConfig, EncoderConfig, FilterConfig
from curate.schemas.layout import RunLayout
from curate.schemas.manifest import read_manifest
from curate.schemas.sample import Sample
from curate.subsets.output import ShardRoller
from curate.subsets.selection import top_count
from tests.fixtures import image_bytes
from tests.pipelines.fake_scores import PROJECTION, score_embeddings, score_shards

OUTPUT_FORMATS = ("parquet", "webdataset", "imagefolder")


@pytest.fixture(scope="module")
def scored(sample_shards: list[Path], tmp_path_factory: pytest.TempPathFactory) -> RunLayout:
    """The four sample shards (8 pairs each), scored straight from their readers."""
    return score_shards(sample_shards, tmp_path_factory.mktemp("filter") / "run")


@pytest.fixture(scope="module")
def sources(sample_shards: list[Path]) -> dict[str, Sample]:
    """Every source sample by its key, as the format readers give it."""
    return {r.key: r for s in find_shards(sample_shards) for r in reader_for(s) if isinstance(r, Sample)}


def direct_keys(layout: RunLayout, predicate: str, *, top: int | None = None) -> set[str]:
    """The keys a predicate selects, asked of DuckDB directly over the scores files."""
    scores = f"read_parquet('{layout.table_dir('scores')}/*.parquet', union_by_name = true)"
    if top is not None:
        scores = f"(SELECT * FROM {scores} ORDER BY similarity DESC, key LIMIT {top})"
    return {k for (k,) in duckdb.sql(f"SELECT key FROM {scores} WHERE {predicate}").fetchall()}


def read_subset(out: Path) -> list[Sample]:
    found = [r for s in find_shards([out]) for r in reader_for(s)]
    assert all(isinstance(r, Sample) for r in found), found
    return found  # type: ignore[return-value]


def comparable(key: str) -> str:
    """A key as every writer keeps it: image extension dropped, dots (tar keys) as `_`."""
    return strip_image_extension(key).replace(".", "_")


def source_key_of(sample: Sample) -> str:
    """Subset keys are `<output-shard>/<source key>` (image folders name images by position:
    their source key is the `source_key` column)."""
    return comparable(sample.meta.get("source_key") or member_of(sample.key))


CASES = [
    (dict(min_sim=0.2), "similarity >= 0.2", None),
    (dict(max_sim=-0.1), "similarity <= -0.1", None),
    (dict(min_sim=-0.5, max_sim=0.5), "similarity BETWEEN -0.5 AND 0.5", None),
    (dict(where="sampler = 'k_lms' AND seed >= 1003"), "sampler = 'k_lms' AND seed >= 1003", None),
    (dict(where="url IS NOT NULL", min_sim=0.0), "url IS NOT NULL AND similarity >= 0.0", None),
    (dict(top_fraction=0.25), "TRUE", 0.25),
    (dict(top_fraction=0.5, where="text LIKE '%red%' OR width >= 0"), "text LIKE '%red%' OR width >= 0", 0.5),
    (dict(top_fraction=0.6, min_sim=0.0, max_sim=0.9), "similarity BETWEEN 0.0 AND 0.9", 0.6),
]


@pytest.mark.parametrize("options, predicate, fraction", CASES)
def test_keeps_exactly_what_duckdb_selects(scored, tmp_path, options, predicate, fraction):
    total = 32
    top = math.ceil(fraction * total) if fraction else None
    expected = direct_keys(scored, predicate, top=top)
    assert 0 < len(expected) < total  # the case really filters

    summary = run_filter(FilterConfig(run_dir=scored.root, out=tmp_path / "sub", **options), quiet=True)

    kept = read_subset(tmp_path / "sub")
    assert summary.manifest.counts.kept == len(kept) == len(expected)
    assert {s.meta["source_key"] for s in kept} == expected
    assert all(s.key.split("/", 1)[1] == s.meta["source_key"] for s in kept)  # `<output shard>/<run key>`


@pytest.mark.parametrize("fmt", OUTPUT_FORMATS)
def test_image_bytes_text_and_similarity_are_the_sources(scored, sources, tmp_path, fmt):
    out = tmp_path / fmt
    run_filter(FilterConfig(run_dir=scored.root, out=out, min_sim=-0.3, format=fmt, shard_size=5), quiet=True)

    by_key = {comparable(k): s for k, s in sources.items()}
    similarity = dict(duckdb.sql(f"SELECT key, similarity FROM '{scored.table_dir('scores')}/*.parquet'").fetchall())
    kept = read_subset(out)
    assert kept and {s.format for s in find_shards([out])} == {fmt}
    for sample in kept:
        source = by_key[source_key_of(sample)]
        assert sample.image == source.image  # byte for byte
        assert sample.text == source.text
        if "source_key" in sample.meta:  # parquet and image folders read it back as meta
            assert sources[sample.meta["source_key"]] is source
    if fmt == "parquet":  # similarity travels as a float32 column beside the meta
        table = pq.read_table(out / "00000.parquet")
        assert str(table.schema.field("similarity").type) == "float"
        for key, sim in zip(table.column("key").to_pylist(), table.column("similarity").to_pylist()):
            assert sim == similarity[key]


def test_manifest_counts_add_up_and_outputs_roll(scored, tmp_path):
    out = tmp_path / "sub"
    config = FilterConfig(run_dir=scored.root, out=out, min_sim=-0.6, max_sim=0.8, top_fraction=0.75,
                          where="width IS NOT NULL OR sampler IS NOT NULL", shard_size=4)
    run_filter(config, quiet=True)

    manifest = read_manifest(out)
    counts = manifest.counts
    assert counts.scored == 32 == counts.kept + counts.dropped
    assert sum(counts.dropped_by_reason.values()) == counts.dropped
    assert set(counts.dropped_by_reason) == {"below_min_sim", "above_max_sim", "outside_top_fraction", "where"}
    assert counts.dropped_by_reason["where"] > 0
    assert sum(i.kept for i in manifest.inputs) == counts.kept
    assert sum(i.rows for i in manifest.inputs) == counts.scored
    assert manifest.projections == [PROJECTION]
    assert manifest.criteria["top_fraction"] == 0.75 and manifest.criteria["top_fraction_threshold"]["rows"] == 24
    names = [o.path for o in manifest.outputs]
    assert names == [f"{i:05d}.parquet" for i in range(len(names))] and len(names) > 1
    assert [o.rows for o in manifest.outputs] == [pq.read_metadata(out / n).num_rows for n in names]
    assert sum(o.rows for o in manifest.outputs) == counts.kept
    assert sorted(p.name for p in out.iterdir()) == sorted(names + ["manifest.json"])


def test_same_run_twice_gives_the_same_files(scored, tmp_path):
    for name in ("a", "b"):
        run_filter(FilterConfig(run_dir=scored.root, out=tmp_path / name, top_fraction=0.5, shard_size=3), quiet=True)
    for path in sorted((tmp_path / "a").glob("*.parquet")):
        assert pq.read_table(path).equals(pq.read_table(tmp_path / "b" / path.name))


def test_second_run_refuses_then_overwrite_redoes(scored, tmp_path):
    out = tmp_path / "sub"
    run_filter(FilterConfig(run_dir=scored.root, out=out, min_sim=-1.0, shard_size=4), quiet=True)
    assert len(list(out.glob("*.parquet"))) == 8

    with pytest.raises(CurateError, match="--overwrite"):
        run_filter(FilterConfig(run_dir=scored.root, out=out, min_sim=0.5), quiet=True)

    summary = run_filter(FilterConfig(run_dir=scored.root, out=out, min_sim=0.5, overwrite=True), quiet=True)
    assert [p.name for p in out.glob("*.parquet")] == ["00000.parquet"]  # the 8 old shards are gone
    assert read_manifest(out).counts.kept == summary.manifest.counts.kept == len(read_subset(out))


def test_interrupted_run_resumes_keeping_finished_shards(scored, tmp_path, monkeypatch):
    config = FilterConfig(run_dir=scored.root, out=tmp_path / "whole", shard_size=5)
    run_filter(config, quiet=True)
    reference = {p.name: pq.read_table(p) for p in (tmp_path / "whole").glob("*.parquet")}

    out = tmp_path / "sub"
    config = FilterConfig(run_dir=scored.root, out=out, shard_size=5)
    write = ShardRoller.write

    def killed_after_twelve(self, sample, similarity):
        if self.index == 12:
            raise KeyboardInterrupt
        write(self, sample, similarity)

    monkeypatch.setattr(ShardRoller, "write", killed_after_twelve)
    with pytest.raises(KeyboardInterrupt):
        run_filter(config, quiet=True)
    assert sorted(p.name for p in out.iterdir()) == [".filter-plan.json", "00000.parquet", "00001.parquet"]
    before = (out / "00000.parquet").stat().st_mtime_ns
    monkeypatch.setattr(ShardRoller, "write", write)

    summary = run_filter(config, quiet=True)

    assert summary.reused_outputs == 2
    assert (out / "00000.parquet").stat().st_mtime_ns == before  # not rewritten
    assert {p.name: pq.read_table(p) for p in out.glob("*.parquet")} == reference
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []


@pytest.mark.parametrize("fmt", OUTPUT_FORMATS)
def test_subset_round_trips_through_embed(embedded_run, tiny_encoders, tmp_path, fmt):
    subset = tmp_path / "subset"
    summary = run_filter(FilterConfig(run_dir=embedded_run.root, out=subset, top_fraction=0.5, format=fmt,
                                      shard_size=6), quiet=True)
    kept_texts = Counter(duckdb.sql(
        f"SELECT text FROM (SELECT * FROM '{embedded_run.table_dir('scores')}/*.parquet' "
        f"ORDER BY similarity DESC, key LIMIT {summary.manifest.counts.kept})").fetchall())

    again = run_embed(EmbedConfig(inputs=(subset,), out=tmp_path / "run2", encoders=tiny_encoders,
                                  batch_size=16, workers=0), quiet=True)

    assert {s.format for s in find_shards([subset])} == {fmt}
    assert again.pairs == summary.manifest.counts.kept == 8 and not again.errors
    texts = Counter(duckdb.sql(f"SELECT text FROM '{tmp_path}/run2/embeddings/*.parquet'").fetchall())
    assert texts == kept_texts


@pytest.fixture(scope="module")
def embedded_run(sample_shards, tiny_encoders: EncoderConfig, tmp_path_factory) -> RunLayout:
    """Two sample shards (16 pairs) embedded with tiny encoders, then scored from their embeddings."""
    out = tmp_path_factory.mktemp("filter-embedded") / "run"
    run_embed(EmbedConfig(inputs=tuple(sample_shards[1:3]), out=out, encoders=tiny_encoders, batch_size=16,
                          workers=0), quiet=True)
    return score_embeddings(RunLayout(out))


def test_missing_source_shard_is_named(sample_shards, tmp_path):
    moved = shutil.copy(next(p for p in sample_shards if p.suffix == ".tar"), tmp_path / "00009.tar")
    layout = score_shards([Path(moved)], tmp_path / "run")
    Path(moved).unlink()
    with pytest.raises(CurateError, match="00009.tar.*missing"):
        run_filter(FilterConfig(run_dir=layout.root, out=tmp_path / "sub"), quiet=True)
    assert not (tmp_path / "sub").exists() or not any((tmp_path / "sub").iterdir())


def test_source_that_changed_after_scoring_is_refused(sample_shards, tmp_path):
    tar = Path(shutil.copy(next(p for p in sample_shards if p.suffix == ".tar"), tmp_path / "00009.tar"))
    layout = score_shards([tar], tmp_path / "run")
    other = next(p for p in sample_shards if p.suffix == ".parquet")
    shutil.copy(other, tar.with_suffix(".parquet"))  # same place, other content
    tar.unlink()
    tar.with_suffix(".parquet").rename(tar)
    with pytest.raises(CurateError, match="no longer in its source"):
        run_filter(FilterConfig(run_dir=layout.root, out=tmp_path / "sub"), quiet=True)
    assert not list((tmp_path / "sub").glob("*.parquet")) and not (tmp_path / "sub/manifest.json").exists()


def test_scores_from_two_projections_are_refused(sample_shards, tmp_path):
    run = tmp_path / "run"
    score_shards(sample_shards[:1], run, projection="fp-a")
    score_shards(sample_shards[1:2], run, projection="fp-b")
    with pytest.raises(CurateError, match="2 projections"):
        run_filter(FilterConfig(run_dir=run, out=tmp_path / "sub"), quiet=True)


def _cli_args(case: list[str], scored: RunLayout, tmp_path: Path) -> list[str]:
    (tmp_path / "empty-run").mkdir(exist_ok=True)
    subs = {"{run}": str(scored.root), "{out}": str(tmp_path / "sub"), "{empty}": str(tmp_path / "empty-run")}
    return [subs.get(a, a) for a in case]


@pytest.mark.parametrize(
    "case, says",
    [
        (["{run}", "--out", "{out}", "--min-sim", "1.5"], "--min-sim must lie in [-1, 1]"),
        (["{run}", "--out", "{out}", "--max-sim", "-2"], "--max-sim must lie in [-1, 1]"),
        (["{run}", "--out", "{out}", "--min-sim", "0.5", "--max-sim", "0.2"], "is above --max-sim"),
        (["{run}", "--out", "{out}", "--top-fraction", "0"], "--top-fraction must lie in (0, 1]"),
        (["{run}", "--out", "{out}", "--top-fraction", "1.5"], "--top-fraction must lie in (0, 1]"),
        (["{run}", "--out", "{out}", "--where", "no_such_column > 3"], "no_such_column"),
        (["{run}", "--out", "{out}", "--where", "width >>>= 3 AND"], "--where"),
        (["{run}", "--out", "{out}", "--format", "tiff"], "known:"),
        (["{run}", "--out", "{out}", "--shard-size", "0"], "--shard-size"),
        (["{empty}", "--out", "{out}"], "has no scores"),
        (["/no/such/run", "--out", "{out}"], "does not exist"),
        (["{run}", "--out", "{run}"], "inside the run"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(scored, tmp_path, case, says):
    result = CliRunner().invoke(app, ["filter", *_cli_args(case, scored, tmp_path)])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and says in lines[0], result.stderr
    assert not (tmp_path / "sub" / "manifest.json").exists()


def test_cli_prints_the_summary_on_stdout(scored, tmp_path):
    args = [str(scored.root), "--out", str(tmp_path / "sub"), "--min-sim", "0", "--where", "text IS NOT NULL",
            "--format", "webdataset", "--quiet"]
    result = CliRunner().invoke(app, ["filter", *args])
    assert result.exit_code == 0, result.output
    assert "kept" in result.stdout and "below min sim" in result.stdout and "where" in result.stdout
    assert read_manifest(tmp_path / "sub").format == "webdataset"


def test_cli_process_refuses_a_finished_subset_without_traceback(scored, tmp_path):
    run_filter(FilterConfig(run_dir=scored.root, out=tmp_path / "sub", top_fraction=0.1), quiet=True)
    args = [sys.executable, "-m", "curate.cli", "filter", str(scored.root), "--out", str(tmp_path / "sub")]
    again = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "Traceback" not in again.stderr
    assert again.stderr.strip().startswith("error:") and "--overwrite" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1


def test_a_file_in_scores_that_is_not_a_scores_file_is_named(tmp_path):
    (tmp_path / "run/scores").mkdir(parents=True)
    pq.write_table(pa.table({"key": ["a"], "similarity": [0.5]}), tmp_path / "run/scores/stray.parquet")
    with pytest.raises(CurateError, match="stray.parquet is not a scores file"):
        run_filter(FilterConfig(run_dir=tmp_path / "run", out=tmp_path / "sub"), quiet=True)


def test_out_holding_a_source_shard_is_refused(sample_shards, tmp_path):
    tar = Path(shutil.copy(next(p for p in sample_shards if p.suffix == ".tar"), tmp_path / "00000.tar"))
    layout = score_shards([tar], tmp_path / "run")
    with pytest.raises(CurateError, match="contains the source shard"):
        run_filter(FilterConfig(run_dir=layout.root, out=tmp_path, format="webdataset"), quiet=True)
    assert tar.read_bytes() == next(p for p in sample_shards if p.suffix == ".tar").read_bytes()


def test_nan_similarity_never_passes_a_similarity_criterion(sample_shards, tmp_path):
    layout = score_shards(sample_shards[:1], tmp_path / "run")
    (path,) = layout.shard_files("scores")
    table = pq.read_table(path)
    sims = table.column("similarity").to_pylist()
    sims[0] = float("nan")  # pyarrow's min/max statistics leave NaN out: DuckDB must not trust them
    pq.write_table(table.set_column(2, "similarity", pa.array(sims, pa.float32())), path)
    nan_key = table.column("key")[0].as_py()

    for n, options in enumerate([dict(min_sim=-1.0), dict(max_sim=1.0), dict(top_fraction=1.0), {}]):
        summary = run_filter(FilterConfig(run_dir=layout.root, out=tmp_path / f"s{n}", **options), quiet=True)
        keys = {s.meta["source_key"] for s in read_subset(tmp_path / f"s{n}")}
        assert (nan_key in keys) == (not options), options
        assert summary.manifest.counts.kept == len(keys) == (8 if not options else 7)


def test_top_count_rounds_up_but_not_past_float_noise():
    assert top_count(0.3, 10) == 3  # 0.3 * 10 is 3.0000000000000004
    assert top_count(0.001, 10) == 1
    assert top_count(1.0, 7) == 7
    assert top_count(0.5, 0) == 0


def test_meta_types_the_sources_disagree_on_become_text(tmp_path):
    for name, width in (("a-00000", pa.array([64, 96], pa.int64())), ("b-00000", pa.array(["wide", None]))):
        pq.write_table(pa.table({"key": ["x", "y"], "jpg": [image_bytes(1), image_bytes(2)],
                                 "caption": ["one", "two"], "width": width}), tmp_path / f"{name}.parquet")
    layout = score_shards(sorted(tmp_path.glob("*.parquet")), tmp_path / "run")
    run_filter(FilterConfig(run_dir=layout.root, out=tmp_path / "sub"), quiet=True)
    widths = pq.read_table(tmp_path / "sub/00000.parquet").column("width").to_pylist()
    assert widths == ["64", "96", "wide", None]


def test_shards_not_written_by_a_finished_filter_are_not_clobbered(scored, tmp_path):
    out = tmp_path / "sub"
    out.mkdir()
    (out / "00000.parquet").write_bytes(b"someone else's file")
    with pytest.raises(CurateError, match="00000.parquet, not written by a finished filter"):
        run_filter(FilterConfig(run_dir=scored.root, out=out), quiet=True)
    assert (out / "00000.parquet").read_bytes() == b"someone else's file"
    run_filter(FilterConfig(run_dir=scored.root, out=out, overwrite=True), quiet=True)
    assert len(read_subset(out)) == 32
