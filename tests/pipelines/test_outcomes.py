"""Per-shard stats files: each finished shard says what it wrote, refused and spent, and the counts
agree with the tables beside them."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from curate.io.run_database import RunDatabase
from curate.io.stats_files import read_outcomes
from curate.schemas.layout import RunLayout
from curate.schemas.tables import Table


def test_embed_writes_one_stats_file_per_shard_that_adds_up(scored_run: RunLayout):
    outcomes = {o.shard_id: o for o in read_outcomes(scored_run) if o.step == "embed"}
    shards = {p.stem for p in scored_run.shard_files(Table.EMBEDDINGS)}
    assert set(outcomes) == shards
    for shard_id, outcome in outcomes.items():
        assert outcome.rows == pq.read_metadata(scored_run.embeddings(shard_id)).num_rows
        errors = pq.read_table(scored_run.errors(shard_id)).column("error").to_pylist()
        assert sum(outcome.errors.values()) == len(errors)
        assert {kind: errors.count(kind) for kind in set(errors)} == dict(outcome.errors)
        assert outcome.stages["model"] > 0 and not outcome.skipped
    assert sum(sum(o.errors.values()) for o in outcomes.values()) > 0  # the broken tar's refusals are counted


def test_score_writes_one_stats_file_per_scored_shard(scored_scene_run: Path):
    layout = RunLayout(scored_scene_run)
    outcomes = {o.shard_id: o for o in read_outcomes(layout) if o.step == "score"}
    assert set(outcomes) == {p.stem for p in layout.shard_files(Table.SCORES)}
    for shard_id, outcome in outcomes.items():
        assert outcome.rows == pq.read_metadata(layout.scores(shard_id)).num_rows
        assert outcome.counts["non_finite"] == 0 and outcome.seconds > 0


def test_sql_sees_where_the_time_went(scene_run, scored_scene_run: Path):
    embedded, scored = RunLayout(scene_run.run), RunLayout(scored_scene_run)
    with RunDatabase(scene_run.run) as db:
        embed = db.arrow("SELECT sum(rows) AS rows, count(*) AS shards FROM stats WHERE step = 'embed'").to_pylist()[0]
        stages = {r["stage"] for r in db.arrow("SELECT DISTINCT stage FROM stages WHERE step = 'embed'").to_pylist()}
    with RunDatabase(scored_scene_run) as db:
        score = db.arrow("SELECT sum(rows) AS rows FROM stats WHERE step = 'score'").to_pylist()[0]
    files = embedded.shard_files(Table.EMBEDDINGS)
    assert embed["rows"] == sum(pq.read_metadata(p).num_rows for p in files) and embed["shards"] == len(files)
    assert score["rows"] == sum(pq.read_metadata(p).num_rows for p in scored.shard_files(Table.SCORES))
    assert {"model", "write"} <= stages


def test_the_report_shows_where_the_time_went(scored_scene_run: Path, tmp_path):
    from curate.pipelines.report import run_report
    from curate.schemas.config.review import ReportConfig

    summary = run_report(ReportConfig(run_dir=scored_scene_run, out=tmp_path / "r.html", thumbnails=0, sample=0))
    html = summary.html.read_text()
    section = html[html.index('<section id="time">'):]
    section = section[:section.index("</section>")]
    assert "Where time went" in section and "<td>score</td>" in section
