"""The field's basic filters: DataComp's "basic" and LAION's English cut, as `--recipe`.

A hand-made WebDataset shard holds pairs that each break exactly one of DataComp's rules
(caption of more than 2 words and more than 5 characters, English, smaller side >= 200 px,
aspect ratio <= 3), two that sit exactly on the limits, and ordinary ones. It is embedded for
real (the pair facts come from decoding and from the language identifier), scored with
pseudo similarities, and filtered: each rule must drop exactly its pair, and each recipe
must keep exactly what the `--where` it stands for (written out here, as the docs give it) keeps.
"""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from curate.pipelines.embed import run_embed
from curate.pipelines.filter import run_filter
from curate.schemas.config.flow import EmbedConfig, EncoderConfig, FilterConfig
from curate.schemas.layout import RunLayout
from tests.fixtures import write_tar
from tests.pipelines.scored_runs import write_scores

ENGLISH = "a red circle and a blue square on a white background"
PAIRS = {  # member key -> (width, height, caption, the one DataComp rule it breaks or None)
    "ok-square": (256, 256, ENGLISH, None),
    "ok-limits": (200, 600, "a tall green tower under a grey sky", None),  # smaller side 200, ratio exactly 3
    "ok-wide": (600, 300, "two yellow stars above a calm blue lake", None),
    "tiny": (199, 300, "a small orange triangle in the corner of the frame", "smaller side >= 200"),
    "panorama": (900, 200, "a long mountain range seen from the valley floor", "aspect ratio <= 3"),
    "one-word": (256, 256, "lighthouse", "more than 2 words"),
    "short": (256, 256, "I a m", "more than 5 characters"),  # 3 words, 5 characters, read as English
    "french": (256, 256, "un grand cercle rouge et un petit carré bleu sur un fond blanc", "English"),
}
DATACOMP_WHERE = (r"len(regexp_extract_all(text, '\S+')) > 2 AND length(text) > 5 AND language = 'en' "
                  "AND least(decoded_width, decoded_height) >= 200 "
                  "AND greatest(decoded_width, decoded_height) <= 3 * least(decoded_width, decoded_height)")
LAION_WHERE = "similarity >= 0.28 AND language = 'en'"
RULES = {
    "more than 2 words": lambda row: len(row["text"].split()) > 2,
    "more than 5 characters": lambda row: len(row["text"]) > 5,
    "English": lambda row: row["language"] == "en",
    "smaller side >= 200": lambda row: min(row["decoded_width"], row["decoded_height"]) >= 200,
    "aspect ratio <= 3": lambda row: max(row["decoded_width"], row["decoded_height"])
    <= 3 * min(row["decoded_width"], row["decoded_height"]),
}


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 40)).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def basic_run(tiny_encoders: EncoderConfig, tmp_path_factory) -> RunLayout:
    root = tmp_path_factory.mktemp("basic")
    members = [m for key, (w, h, text, _) in PAIRS.items() for m in ((f"{key}.png", png(w, h)),
                                                                    (f"{key}.txt", text.encode()))]
    shard = write_tar(root / "00000.tar", members)
    run_embed(EmbedConfig(inputs=(shard,), out=root / "run", encoders=tiny_encoders, batch_size=4, workers=0),
              quiet=True)
    projection = root / "projection"
    projection.mkdir()
    layout = RunLayout(root / "run")
    write_scores(layout, projection_dir=projection)
    return layout


def rows(layout: RunLayout) -> dict[str, dict]:
    table = pa.concat_tables(pq.read_table(p) for p in layout.shard_files("scores"))
    return {row["key"].split("/", 1)[1]: row for row in table.to_pylist()}


def kept(layout: RunLayout, out: Path, **criteria) -> set[str]:
    run_filter(FilterConfig(run_dir=layout.root, out=out, **criteria), quiet=True)
    return {k.split("/", 1)[1] for f in sorted(out.glob("*.parquet"))
            for k in pq.read_table(f, columns=["source_key"]).column(0).to_pylist()}


def test_embed_records_the_decoded_size_format_and_language(basic_run):
    found = rows(basic_run)
    for key, (width, height, text, _) in PAIRS.items():
        row = found[key]
        assert (row["decoded_width"], row["decoded_height"], row["decoded_format"]) == (width, height, "png"), key
        assert 0.0 <= row["language_confidence"] <= 1.0
    assert found["french"]["language"] == "fr" and found["french"]["language_confidence"] > 0.9
    assert all(found[k]["language"] == "en" for k in ("ok-square", "ok-limits", "ok-wide", "tiny", "panorama"))


def test_each_datacomp_rule_drops_exactly_its_pair(basic_run, tmp_path):
    found = rows(basic_run)
    for rule, passes in RULES.items():
        failing = {key for key, row in found.items() if not passes(row)}
        assert failing == {key for key, (*_, broken) in PAIRS.items() if broken == rule}, rule
    by_recipe = kept(basic_run, tmp_path / "recipe", recipe="datacomp-basic")
    assert by_recipe == {key for key, (*_, broken) in PAIRS.items() if broken is None}


def test_recipes_keep_what_their_where_keeps(basic_run, tmp_path):
    assert kept(basic_run, tmp_path / "dc", recipe="datacomp-basic") == kept(basic_run, tmp_path / "dcw",
                                                                             where=DATACOMP_WHERE)
    laion = kept(basic_run, tmp_path / "laion", recipe="laion")
    found = rows(basic_run)
    assert laion == kept(basic_run, tmp_path / "laionw", where=LAION_WHERE)
    assert laion == {k for k, row in found.items() if row["similarity"] >= 0.28 and row["language"] == "en"}
    assert 0 < len(laion) < len(found)  # the pseudo similarities put pairs on both sides of 0.28


def test_a_recipe_ands_with_the_other_criteria(basic_run, tmp_path):
    found = rows(basic_run)
    floor = sorted(row["similarity"] for row in found.values())[len(found) // 2]
    both = kept(basic_run, tmp_path / "both", recipe="datacomp-basic", min_sim=floor)
    alone = kept(basic_run, tmp_path / "alone", recipe="datacomp-basic")
    assert both == {k for k in alone if found[k]["similarity"] >= floor}
