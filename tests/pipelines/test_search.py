"""`curate search` on real embeddings of rendered scenes (random ResNet + MiniLM, trained projection)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from curate.cli.app import app
from curate.index.store import BuiltIndex
from curate.pipelines.search import run_search
from curate.schemas.config.vectors import SearchConfig
from curate.synthetic.scenes import BACKGROUNDS, plan_scene, render_scene
from tests.pipelines.scene_runs import SCENES, SceneRun, one_thread


def scene_of(key: str) -> int:
    """`00001/scene-000123` -> 123."""
    return int(key.rsplit("scene-", 1)[1])


def search(run, **kwargs):
    with one_thread():
        return run_search(SearchConfig(run_dir=run, device="cpu", **kwargs))


@pytest.mark.parametrize("background", sorted(BACKGROUNDS))
def test_a_text_query_for_a_background_returns_that_background_first(background, scene_index: BuiltIndex,
                                                                    scene_run: SceneRun):
    if not scene_run.real_text:
        pytest.skip("needs the packaged MiniLM text encoder (the tiny BERT has no word meanings)")
    result = search(scene_index.run_dir, text=f"a shape on a {background} background", k=5)
    top = [plan_scene(scene_of(h.key))[0] for h in result.hits]
    assert top[0] == background, top
    assert top.count(background) >= 4, top


def test_an_image_query_returns_its_own_pair_first(scene_index: BuiltIndex, tmp_path):
    plans = [plan_scene(i) for i in range(SCENES)]
    unique = [i for i in (7, 123, 321, 450, 599) if plans.count(plans[i]) == 1]
    for index in unique:
        query = tmp_path / f"{index}.jpg"
        query.write_bytes(render_scene(index, image_format="JPEG").image)  # the bytes the shard holds
        hits = search(scene_index.run_dir, image=query, k=3).hits
        assert scene_of(hits[0].key) == index and hits[0].similarity > 0.999
        assert hits[0].text == render_scene(index).caption and hits[0].shard == hits[0].key.split("/")[0]


def test_text_target_finds_the_caption_itself(scene_index: BuiltIndex):
    caption = render_scene(42).caption
    hits = search(scene_index.run_dir, text=caption, k=3, target="text").hits
    assert hits[0].text == caption and hits[0].similarity > 0.999


def test_cli_prints_a_table_or_json(scene_index: BuiltIndex):
    runner = CliRunner()
    args = ["search", str(scene_index.run_dir), "--text", "a red circle", "-k", "4", "--device", "cpu"]
    with one_thread():
        as_json = runner.invoke(app, args + ["--json"])
        as_table = runner.invoke(app, args)
    assert as_json.exit_code == 0, as_json.output
    payload = json.loads(as_json.stdout)
    assert payload["query"] == {"text": "a red circle", "target": "image"}
    assert [h["rank"] for h in payload["hits"]] == [1, 2, 3, 4]
    assert {"key", "text", "similarity", "shard"} <= set(payload["hits"][0])
    sims = [h["similarity"] for h in payload["hits"]]
    assert sims == sorted(sims, reverse=True)
    assert as_table.exit_code == 0 and "rank" in as_table.stdout and payload["hits"][0]["key"] in as_table.stdout
