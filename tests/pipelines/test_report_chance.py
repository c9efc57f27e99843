"""The report of a run rated against its null: the null drawn beside the scores, the expected
share of chance matches per threshold, and the lowest pairs explained by what their image looks like.

The run is the scenes with a known 10% of rotated captions, so the expected chance share can
be held against the true share of wrong pairs among those a threshold keeps.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from html import escape
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from curate.index.explain import Explanation, Neighbour, explain_pairs
from curate.pipelines.report import run_report
from curate.pipelines.stats import run_stats
from curate.report.html import pair_figure
from curate.report.thumbnails import Pair
from curate.schemas.config.flow import StatsConfig
from curate.schemas.config.review import ReportConfig
from curate.schemas.layout import RunLayout
from curate.schemas.tables import FALSE_MATCH_RATE
from tests.pipelines.scene_runs import one_thread
from tests.pipelines.swapped_runs import SwappedRun
from tests.pipelines.test_report import chromium_binary, colour_pixels, embedded_images, section

NULL_RED = (196, 78, 82)  # figures.MARK, the null's line


@pytest.fixture(scope="module")
def rated(swapped_run: SwappedRun, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("rated") / "report.html"
    with one_thread():
        run_report(ReportConfig(run_dir=swapped_run.runs["contrastive"], out=out, thumbnails=24, sample=0))
    return out


def scores_of(run: Path) -> dict[str, tuple[float, float]]:
    table = pa.concat_tables(pq.read_table(p, columns=["key", "similarity", FALSE_MATCH_RATE])
                             for p in RunLayout(run).shard_files("scores"))
    return dict(zip(table.column("key").to_pylist(), zip(table.column("similarity").to_pylist(),
                                                         table.column(FALSE_MATCH_RATE).to_pylist())))


def test_the_null_is_drawn_beside_the_scores(rated):
    html = rated.read_text()
    pngs = [data for mime, data in embedded_images(section(html, "chance")) if mime == "image/png"]
    assert len(pngs) == 1 and Image.open(io.BytesIO(pngs[0])).format == "PNG"
    assert rated.with_name("report-null.png").read_bytes() == pngs[0]
    assert colour_pixels(np.asarray(Image.open(io.BytesIO(pngs[0])).convert("RGB")), NULL_RED, tolerance=30) > 200


def test_chance_shares_are_the_ones_stats_prints(rated, swapped_run):
    chance = section(rated.read_text(), "chance")
    stats = run_stats(StatsConfig(run_dir=swapped_run.runs["contrastive"]))
    listed = [t for t in stats.thresholds if not t.label.startswith("keeps")]
    assert {t.option for t in listed} == {"--min-sim", "--max-false-match"}
    for t in listed:
        row = re.search(rf"<code>{re.escape(t.option)} {re.escape(f'{t.value:g}')}</code></td>(.*?)</tr>", chance)
        assert row, t.label
        cells = re.findall(r'<td class="n">([^<]*)</td>', row.group(1))
        assert cells[0] == f"{t.kept:,}" and cells[2] == ("-" if t.chance_share is None else f"{t.chance_share:.2%}")


def test_expected_chance_share_is_close_to_the_true_share_of_wrong_pairs(swapped_run):
    """At --max-false-match 0.05 the report's estimate against what the swapped scenes know."""
    stats = run_stats(StatsConfig(run_dir=swapped_run.runs["contrastive"]))
    mark = next(t for t in stats.thresholds if t.option == "--max-false-match" and t.value == 0.05)
    kept = [key for key, (_, rate) in scores_of(swapped_run.runs["contrastive"]).items() if rate <= 0.05]
    true_share = sum(key in swapped_run.scenes.swapped for key in kept) / len(kept)
    print(f"expected chance share {mark.chance_share:.4f}, true share of wrong pairs kept {true_share:.4f}")
    assert len(kept) == mark.kept and abs(mark.chance_share - true_share) < 0.01


def test_the_lowest_pairs_show_what_their_image_looks_like(rated, swapped_run):
    lowest = section(rated.read_text(), "lowest")
    scores = scores_of(swapped_run.runs["contrastive"])
    twelve = sorted(scores, key=lambda k: (scores[k][0], k))[:12]
    with one_thread():
        explained = explain_pairs(swapped_run.runs["contrastive"], twelve, k=3)
    assert lowest.count("this image looks more like:") == 12 and "out-of-fold" in lowest
    for key in twelve:
        figure = lowest[lowest.index(f"<small>{escape(key)}</small>"):]
        listed = re.findall(r"<li>(.*?) <span", figure[: figure.index("</figure>")])
        assert listed == [escape(n.text or "") for n in explained[key].nearest], key
    wrong = [key for key in twelve if key in swapped_run.scenes.swapped]
    truth = swapped_run.scenes.true_captions
    told = sum(truth[key] in [n.text for n in explained[key].nearest] for key in wrong)
    print(f"{len(wrong)} of the 12 lowest pairs are wrong; {told} show their true caption among the three")
    assert len(wrong) >= 9 and told >= 1


def test_captions_in_an_explanation_are_never_markup():
    hostile = '<script>alert(1)</script><img src=x onerror=alert(2)>'
    pair = Pair(key="00000/<b>k</b>", text=hostile, similarity=-0.1)
    near = [Neighbour("00001/a", hostile + " & more", 0.5), Neighbour("00002/b", None, 0.4)]
    html = pair_figure(pair, Explanation(pair.key, hostile, -0.1, 0.9, near, "exact"))
    assert "<script" not in html and "<img src=x" not in html and "<b>k</b>" not in html
    assert html.count(escape(hostile)) == 2 and "this image looks more like:" in html


def test_a_run_without_a_null_says_so(swapped_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(swapped_run.runs["contrastive"], run)
    shutil.rmtree(RunLayout(run).null_dir)
    with one_thread():
        summary = run_report(ReportConfig(run_dir=run, thumbnails=4, sample=0, explain=0))
    html = summary.html.read_text()
    assert "No null" in section(html, "chance") and not summary.html.with_name("report-null.png").exists()
    assert "this image looks more like" not in html


def test_rated_page_renders_the_null_in_headless_chromium(rated, swapped_run, tmp_path):
    """The rated page shows more of the null's red than the same page without its null figure."""
    binary = chromium_binary()
    if binary is None:
        pytest.skip("no chromium binary (apt-get install chromium)")
    plain = tmp_path / "plain.html"
    plain.write_text(re.sub(r'<img class="fig" alt="the run[^"]*s similarity beside[^>]*>', "", rated.read_text()))
    reds = []
    for page in (rated, plain):
        shot = tmp_path / f"{page.stem}.png"
        subprocess.run([binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                        "--disable-background-networking", "--disable-component-update", "--disable-sync",
                        f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1280,5000",
                        page.resolve().as_uri()], capture_output=True, timeout=90, check=False)
        assert shot.exists(), "chromium wrote no screenshot"
        reds.append(colour_pixels(np.asarray(Image.open(shot).convert("RGB")), NULL_RED, tolerance=30))
    print(f"null-red pixels: {reds[0]} with the null figure, {reds[1]} without")
    assert reds[0] - reds[1] > 200
