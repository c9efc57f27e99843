"""Reading prompts from anywhere: subset shards, CSV/Parquet/JSONL tables, `datasets` folders.

Every input becomes a stream of `PromptRow`s (the prompt, and the basic prompt of a pair
when the source has one). Shards of any image-text format go through the shard readers;
tables are streamed; the text and plain columns are found by name unless given.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import pyarrow.parquet as pq

import curate.io  # noqa: F401  (fills the format registries)
from curate.errors import CurateError
from curate.io.detect import detect_format, find_shards, reader_for
from curate.schemas.sample import Sample

TEXT_COLUMNS = ("prompt", "text", "caption", "detailed", "detailed_prompt", "target")
PLAIN_COLUMNS = ("plain", "basic", "basic_prompt", "simple", "source")
TABLE_SUFFIXES = (".csv", ".parquet", ".jsonl", ".json")


@dataclass(frozen=True)
class PromptRow:
    """One prompt; `plain` is the basic version when the source pairs one with it, else None."""

    text: str
    plain: str | None = None


def read_prompts(
    inputs: Iterable[Path], *, text_column: str | None = None, plain_column: str | None = None
) -> Iterator[PromptRow]:
    """Every prompt of every input, in input order; refuses missing paths and unknown files."""
    for raw in inputs:
        path = Path(raw)
        if not path.exists():
            raise CurateError(f"Input path {path} does not exist.")
        if _is_datasets_folder(path):
            yield from _datasets_rows(path, text_column, plain_column)
        elif path.is_file() and path.suffix.lower() in TABLE_SUFFIXES and detect_format(path) is None:
            yield from _table_rows(path, text_column, plain_column)
        else:
            yield from _shard_rows(path)


def _shard_rows(path: Path) -> Iterator[PromptRow]:
    """Captions of image-text shards (a subset folder or shard files), through the shard readers."""
    for shard in find_shards([path]):
        for record in reader_for(shard):
            if isinstance(record, Sample):
                yield PromptRow(text=record.text or "")


def _pick(columns: list[str], wanted: str | None, candidates: tuple[str, ...], what: str, path: Path) -> str | None:
    """The named column (refused when absent) or the first known name present."""
    if wanted is not None:
        if wanted not in columns:
            raise CurateError(f"{path} has no column '{wanted}' (--{what}-column); it has: {', '.join(columns)}.")
        return wanted
    lowered = {c.lower(): c for c in columns}
    return next((lowered[c] for c in candidates if c in lowered), None)


def _columns(path: Path, columns: list[str], text_column: str | None, plain_column: str | None) -> tuple[str, str | None]:
    text = _pick(columns, text_column, TEXT_COLUMNS, "text", path)
    if text is None:
        raise CurateError(
            f"{path} has no prompt column (looked for {', '.join(TEXT_COLUMNS)}); pass --text-column."
        )
    plain = _pick(columns, plain_column, PLAIN_COLUMNS, "plain", path)
    return text, plain if plain != text else None


def _row(record: dict[str, Any], text: str, plain: str | None) -> PromptRow:
    value = record.get(text)
    basic = record.get(plain) if plain is not None else None
    return PromptRow(text="" if value is None else str(value), plain=None if plain is None else ("" if basic is None else str(basic)))


def _table_rows(path: Path, text_column: str | None, plain_column: str | None) -> Iterator[PromptRow]:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        yield from _parquet_rows(path, text_column, plain_column)
    elif suffix == ".csv":
        yield from _csv_rows(path, text_column, plain_column)
    else:
        yield from _jsonl_rows(path, text_column, plain_column)


def _parquet_rows(path: Path, text_column: str | None, plain_column: str | None) -> Iterator[PromptRow]:
    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # noqa: BLE001 - any unreadable footer is the user's file
        raise CurateError(f"{path} is not a readable Parquet file ({type(exc).__name__}).") from None
    text, plain = _columns(path, parquet.schema_arrow.names, text_column, plain_column)
    names = [text] + ([plain] if plain else [])
    with parquet:
        for batch in parquet.iter_batches(columns=names):
            for record in batch.to_pylist():
                yield _row(record, text, plain)


def _csv_rows(path: Path, text_column: str | None, plain_column: str | None) -> Iterator[PromptRow]:
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.DictReader(handle)
        text, plain = _columns(path, list(reader.fieldnames or []), text_column, plain_column)
        for record in reader:
            yield _row(record, text, plain)


def _jsonl_rows(path: Path, text_column: str | None, plain_column: str | None) -> Iterator[PromptRow]:
    with open(path, encoding="utf-8", errors="replace") as handle:
        columns: tuple[str, str | None] | None = None
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                raise CurateError(f"{path}:{number} is not a JSON object per line.") from None
            if columns is None:
                columns = _columns(path, list(record), text_column, plain_column)
            yield _row(record, *columns)


def _is_datasets_folder(path: Path) -> bool:
    """A folder written by `datasets.Dataset.save_to_disk`."""
    return path.is_dir() and (path / "dataset_info.json").is_file() and (path / "state.json").is_file()


def _datasets_rows(path: Path, text_column: str | None, plain_column: str | None) -> Iterator[PromptRow]:
    try:
        from datasets import load_from_disk
    except ImportError:
        raise CurateError("Reading a `datasets` folder needs the datasets package: pip install datasets") from None
    dataset = load_from_disk(str(path))
    text, plain = _columns(path, list(dataset.column_names), text_column, plain_column)
    for record in dataset.select_columns([text] + ([plain] if plain else [])):
        yield _row(record, text, plain)
