"""`curate report`: a self-contained page whose figures and thumbnails match the run's data."""

from __future__ import annotations

import base64
import dataclasses
import io
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from PIL import Image

from curate.cli.app import app
from curate.io.run_database import RunDatabase
from curate.pipelines.report import run_report
from curate.report.stats import score_stats
from curate.report.thumbnails import Pair, attach_thumbnails
from curate.schemas.config.review import ReportConfig
from curate.schemas.layout import RunLayout
from curate.schemas.tables import METADATA_KEY, read_embeddings_info, read_scores_info
from tests.pipelines.scored_runs import write_scores

DATA_URI = re.compile(r'src="data:(image/[a-z]+);base64,([A-Za-z0-9+/=]+)"')
SECTION_IDS = ("summary", "histogram", "sweep", "lowest", "highest", "map", "errors", "models")


@pytest.fixture(scope="module")
def report(scored_run: RunLayout, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report.html"
    run_report(ReportConfig(run_dir=scored_run.root, out=out, thumbnails=24, sample=1000))
    return out


def similarities(run: RunLayout) -> dict[str, float]:
    tables = [pq.read_table(p, columns=["key", "similarity"]) for p in run.shard_files("scores")]
    table = pa.concat_tables(tables)
    return dict(zip(table.column("key").to_pylist(), table.column("similarity").to_pylist()))


def section(html: str, sid: str) -> str:
    start = html.index(f'<section id="{sid}">')
    return html[start: html.index("</section>", start)]


def embedded_images(html: str) -> list[tuple[str, bytes]]:
    return [(mime, base64.b64decode(data)) for mime, data in DATA_URI.findall(html)]


def test_page_is_self_contained(report):
    html = report.read_text()
    assert not re.search(r"https?://", html)
    assert "<script" not in html and "<link" not in html and "@import" not in html
    srcs = re.findall(r'src="([^"]*)"', html)
    assert srcs and all(s.startswith("data:image/") for s in srcs)


def test_embedded_images_are_real_jpegs_and_pngs(report):
    images = embedded_images(report.read_text())
    jpegs = [data for mime, data in images if mime == "image/jpeg"]
    pngs = [data for mime, data in images if mime == "image/png"]
    assert len(jpegs) == 24  # 12 lowest + 12 highest of 35 pairs, every source readable
    assert len(pngs) == 4  # histogram, per-shard histograms, sweep, map
    for data in jpegs:
        image = Image.open(io.BytesIO(data))
        assert image.format == "JPEG" and max(image.size) <= 128
        image.load()
    for data in pngs:
        image = Image.open(io.BytesIO(data))
        assert image.format == "PNG" and min(image.size) > 200
        assert distinct_colours(np.asarray(image.convert("RGB"))) > 20


def test_figures_are_written_beside_the_page(report):
    for name in ("histogram", "shards", "sweep", "map"):
        png = report.with_name(f"report-{name}.png")
        assert Image.open(png).format == "PNG", name


def test_sections_show_the_run(report, scored_run):
    html = report.read_text()
    for sid in SECTION_IDS:
        assert f'<section id="{sid}">' in html, sid
    sims = similarities(scored_run)
    ordered = sorted(sims, key=lambda k: (sims[k], k))
    assert ordered[0] in section(html, "lowest") and ordered[0] not in section(html, "highest")
    assert ordered[-1] in section(html, "highest") and ordered[-1] not in section(html, "lowest")
    assert "undecodable_image" in section(html, "errors") and "missing_caption" in section(html, "errors")
    models = section(html, "models")
    assert "fp-test" in models and "validation.roc_auc" in models and "contrastive" in models
    info = read_embeddings_info(pq.read_schema(scored_run.shard_files("embeddings")[0]))
    assert info.image_encoder.model in models and info.text_encoder.model in models
    assert "raw image embeddings" in section(html, "map")


def test_thumbnails_are_the_pairs_own_images(report, scored_run):
    """The lowest pair's thumbnail is its source image, not a neighbour's."""
    sims = similarities(scored_run)
    lowest = min(sims, key=lambda k: (sims[k], k))
    pair = Pair(key=lowest, text="", similarity=sims[lowest])
    attach_thumbnails([pair], scored_run, px=128)
    html = section(report.read_text(), "lowest")
    first = re.search(r'<figure class="pair"><img alt="([^"]+)" src="data:image/jpeg;base64,([^"]+)"', html)
    assert first and first.group(1) == lowest
    assert base64.b64decode(first.group(2)) == pair.thumbnail


def test_stats_match_numpy(scored_run):
    values = np.array(list(similarities(scored_run).values()), dtype=np.float64)
    with RunDatabase(scored_run.root) as db:
        stats = score_stats(db, shard_panels=3)
    assert stats.pairs == len(values) and stats.mean == pytest.approx(values.mean(), rel=1e-6)
    assert stats.quantiles[0.5] == pytest.approx(np.quantile(values, 0.5), rel=1e-6)
    assert stats.histogram.counts.sum() == len(values)
    for mark in stats.thresholds:
        assert mark.kept == int((values >= mark.value).sum()), mark.label
    edges, kept = stats.sweep()
    assert kept[0] == len(values) and kept[-1] == 0 and np.all(np.diff(kept) <= 0)
    exact = np.array([(values >= edge).sum() for edge in edges[1:-1]])
    assert np.abs(kept[1:-1] - exact).max() <= 1  # a value on a bin edge may fall either side
    assert len(stats.shard_histograms) == 3
    worst = sorted(stats.shards, key=lambda r: r.mean)[:3]
    for row in worst:
        assert stats.shard_histograms[row.shard].counts.sum() == row.pairs


def test_missing_source_costs_the_thumbnail_not_the_report(scored_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(scored_run.root, run, ignore=shutil.ignore_patterns("report*"))
    target = RunLayout(run).scores("00001")
    table = pq.read_table(target)
    info = read_scores_info(table.schema)
    moved = dataclasses.replace(info, source=str(tmp_path / "gone.tar"))
    pq.write_table(table.replace_schema_metadata({METADATA_KEY: moved.to_bytes()}), target)
    summary = run_report(ReportConfig(run_dir=run, thumbnails=70, sample=0))
    html = summary.html.read_text()
    assert summary.html == run / "report.html"
    assert "gone.tar is gone" in html
    assert summary.thumbnails == 35 - 8  # every pair shown; the 8 of the moved shard without a picture
    assert "No map (--sample 0)" in html


def test_report_uses_the_projection_for_the_map_when_it_loads(scored_run, tmp_path):
    train = pytest.importorskip("curate.pipelines.train")
    from curate.schemas.config.flow import TrainConfig

    proj = tmp_path / "proj"
    # 35 pairs: too few for the default 5 out-of-fold projections, and the map only needs the main one
    train.run_train(TrainConfig(run_dir=scored_run.root, out=proj, dim=8, epochs=2, batch_size=8, device="cpu", folds=1),
                    quiet=True)
    run = tmp_path / "run"
    for table in ("embeddings", "errors"):
        shutil.copytree(scored_run.table_dir(table), run / table)
    write_scores(RunLayout(run), projection_dir=proj)
    summary = run_report(ReportConfig(run_dir=run, thumbnails=0, sample=100))
    html = summary.html.read_text()
    assert "projected (contrastive, 8-d)" in section(html, "map")
    assert "metrics.roc_auc" in section(html, "models")


def test_run_without_scores_is_one_line_exit_2(scored_run, tmp_path):
    run = tmp_path / "unscored"
    shutil.copytree(scored_run.table_dir("embeddings"), run / "embeddings")
    result = CliRunner().invoke(app, ["report", str(run)])
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "no scores/ files" in lines[0] and "curate score" in lines[0]
    assert not (run / "report.html").exists()


def chromium_binary() -> str | None:
    return next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)


def distinct_colours(pixels: np.ndarray) -> int:
    packed = pixels.reshape(-1, 3).astype(np.uint32)
    return len(np.unique(packed[:, 0] << 16 | packed[:, 1] << 8 | packed[:, 2]))


def colour_pixels(pixels: np.ndarray, rgb: tuple[int, int, int], tolerance: int = 24) -> int:
    return int((np.abs(pixels.astype(np.int16) - np.array(rgb)).max(axis=-1) <= tolerance).sum())


def test_page_renders_in_headless_chromium(report, tmp_path):
    binary = chromium_binary()
    if binary is None:
        pytest.skip("no chromium binary (apt-get install chromium)")
    shot = tmp_path / "shot.png"
    command = [
        binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1280,4000",
        report.resolve().as_uri(),
    ]
    subprocess.run(command, capture_output=True, timeout=90, check=False)
    assert shot.exists(), "chromium wrote no screenshot"
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    flat = pixels.reshape(-1, 3)
    assert distinct_colours(pixels) > 2000  # figures, thumbnails, text: a real picture
    assert (flat.min(axis=1) > 240).mean() < 0.95  # not a blank page
    assert colour_pixels(pixels, (76, 114, 176), tolerance=10) > 5000  # the histogram and sweep (figure blue)
    shape_colours = [(220, 30, 30), (140, 40, 180), (250, 140, 20), (250, 120, 190), (130, 80, 30), (30, 60, 220)]
    assert sum(colour_pixels(pixels, rgb) > 150 for rgb in shape_colours) >= 3  # the scenes' thumbnails
