"""`prepare`: what it removes and why, pairs, determinism, every input kind, and resuming."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from curate.prompt_lms.card import PREPARE_REPORT
from curate.prompt_lms.config import PromptsPrepareConfig, PromptTags
from curate.prompt_lms.prepare import run_prepare

DIRTY = [
    "a red fox in the rain, digital art, by james gurney",
    "  a red  fox in the rain, digital art, by james gurney ",  # duplicate after whitespace cleaning
    "A RED FOX IN THE RAIN, DIGITAL ART, BY JAMES GURNEY",  # duplicate ignoring case
    "",
    "   ",
    "a nude statue, marble",
    "a lighthouse at sunset, 8k",
    "a black cat on a cliff, soft colors",
]


def _table(path: Path, column: str = "prompt", rows: list[str] = DIRTY) -> Path:
    pq.write_table(pa.table({column: rows}), path)
    return path


def _split_texts(out: Path) -> dict[str, set[str]]:
    return {s: set(pq.read_table(out / f"{s}.parquet").column("text").to_pylist()) for s in ("train", "validation", "test")}


def test_removals_are_counted_by_reason_and_add_up(tmp_path: Path) -> None:
    report = run_prepare(PromptsPrepareConfig(inputs=(_table(tmp_path / "p.parquet"),), out=tmp_path / "out"))
    assert report.read == len(DIRTY)
    assert report.removed == {"duplicate": 2, "empty": 2, "blocklisted": 1}
    assert report.blocked_terms == {"nude": 1}
    assert sum(report.kept.values()) + sum(report.removed.values()) == report.read
    on_disk = json.loads((tmp_path / "out" / PREPARE_REPORT).read_text())
    assert on_disk["removed"] == report.removed
    rows = [r for s in ("train", "validation", "test") for r in pq.read_table(tmp_path / "out" / f"{s}.parquet").to_pylist()]
    fox = next(r for r in rows if r["text"].startswith("a red fox"))
    assert fox["tagged"] == "<|startofprompt|> a red fox in the rain, digital art, by james gurney <|endofprompt|>"
    assert fox["plain"] == "a red fox in the rain" and fox["plain_source"] == "derived"
    assert fox["subject"] == "red fox"


def test_custom_blocklist_and_tags(tmp_path: Path) -> None:
    words = tmp_path / "block.txt"
    words.write_text("lighthouse\n")
    config = PromptsPrepareConfig(inputs=(_table(tmp_path / "p.parquet"),), out=tmp_path / "out", blocklist=words,
                                  tags=PromptTags(start="<go>", end="<stop>"))
    report = run_prepare(config)
    assert report.blocked_terms == {"lighthouse": 1}  # the default list no longer applies: nude is kept
    tagged = [t for s in ("train", "validation", "test")
              for t in pq.read_table(tmp_path / "out" / f"{s}.parquet").column("tagged").to_pylist()]
    assert all(t.startswith("<go> ") and t.endswith(" <stop>") for t in tagged)


def test_pairs_from_a_csv_are_kept_as_given(tmp_path: Path) -> None:
    csv = tmp_path / "pairs.csv"
    csv.write_text('basic,detailed\na fox,"a fox in the snow, highly detailed, by james gurney"\n,"a cat, 8k"\n')
    report = run_prepare(PromptsPrepareConfig(inputs=(csv,), out=tmp_path / "out"))
    assert report.plain_sources == {"given": 1} and report.removed == {"empty_plain": 1}
    rows = [r for s in ("train", "validation", "test") for r in pq.read_table(tmp_path / "out" / f"{s}.parquet").to_pylist()]
    assert rows[0]["plain"] == "a fox" and rows[0]["text"].startswith("a fox in the snow")


def test_split_does_not_depend_on_input_order(tmp_path: Path) -> None:
    rows = [f"prompt number {i}, digital art" for i in range(200)]
    a = run_prepare(PromptsPrepareConfig(inputs=(_table(tmp_path / "a.parquet", rows=rows),), out=tmp_path / "a",
                                         validation_fraction=0.2, test_fraction=0.2))
    b = run_prepare(PromptsPrepareConfig(inputs=(_table(tmp_path / "b.parquet", rows=rows[::-1]),), out=tmp_path / "b",
                                         validation_fraction=0.2, test_fraction=0.2))
    assert _split_texts(tmp_path / "a") == _split_texts(tmp_path / "b")
    assert a.kept == b.kept and min(a.kept.values()) > 0


def test_a_subset_of_shards_is_read_through_the_shard_readers(tmp_path: Path, sample_shards: list[Path]) -> None:
    shard = next(p for p in sample_shards if p.suffix == ".parquet")
    report = run_prepare(PromptsPrepareConfig(inputs=(shard,), out=tmp_path / "out"))
    assert report.read == 8 and sum(report.kept.values()) >= 1


def test_a_prepared_folder_is_not_redone_unless_overwrite(tmp_path: Path) -> None:
    config = PromptsPrepareConfig(inputs=(_table(tmp_path / "p.parquet"),), out=tmp_path / "out")
    run_prepare(config)
    (tmp_path / "out" / "train.parquet").write_bytes(b"sentinel")
    run_prepare(config)
    assert (tmp_path / "out" / "train.parquet").read_bytes() == b"sentinel"
    run_prepare(PromptsPrepareConfig(inputs=config.inputs, out=config.out, overwrite=True))
    assert pq.read_table(tmp_path / "out" / "train.parquet").num_rows >= 0


def test_a_datasets_table_saved_to_disk_is_read(tmp_path: Path) -> None:
    from datasets import Dataset

    Dataset.from_dict({"caption": ["a red fox, 8k", "a black cat, digital art", "  "]}).save_to_disk(str(tmp_path / "ds"))
    report = run_prepare(PromptsPrepareConfig(inputs=(tmp_path / "ds",), out=tmp_path / "out"))
    assert report.read == 3 and report.removed == {"empty": 1}
