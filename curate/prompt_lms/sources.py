"""Reading prompts (and basic->detailed prompt pairs) from whatever a user has.

Accepted: any subset `curate filter` writes (or any shard the readers know: the sample's
text is the prompt), CSV/TSV and Parquet tables of prompts, and tables saved by `datasets`
(`save_to_disk`). A table holds pairs when it has both a basic and a detailed column.
Everything is streamed in batches; nothing here cleans text (that is `prompts.clean`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from curate.errors import CurateError

TEXT_COLUMNS = ("prompt", "text", "caption", "txt", "detailed", "target")
PLAIN_COLUMNS = ("basic", "plain", "plain_prompt", "basic_prompt", "input", "source")
DETAILED_COLUMNS = ("detailed", "detailed_prompt", "target", "output", "upsampled")
TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t"}
BATCH_ROWS = 4096


@dataclass(frozen=True)
class PromptRow:
    """One prompt as found; `plain` is set only when the source gives basic->detailed pairs."""

    text: str | None
    plain: str | None = None


@dataclass(frozen=True)
class Columns:
    """Which table columns hold the (detailed) prompt and, for pairs, the basic prompt."""

    text: str
    plain: str | None = None


def read_prompts(inputs: Iterable[Path], *, text_column: str | None = None,
                 plain_column: str | None = None) -> Iterator[PromptRow]:
    """Every prompt of every input, in input order; refuses missing paths and unknown files."""
    for raw in inputs:
        path = Path(raw)
        if not path.exists():
            raise CurateError(f"Input path {path} does not exist.")
        if path.is_dir() and (path / "state.json").is_file():
            yield from _dataset_rows(path, text_column, plain_column)
        elif _is_table(path):
            yield from _table_rows(path, text_column, plain_column)
        elif path.is_dir() and _tables_in(path):
            for table in _tables_in(path):
                yield from _table_rows(table, text_column, plain_column)
        else:
            yield from _shard_rows(path)


def _is_table(path: Path) -> bool:
    """CSV/TSV files, and Parquet files without an image column (those are shards)."""
    if not path.is_file():
        return False
    if path.suffix.lower() in TABLE_SUFFIXES:
        return True
    if path.suffix.lower() != ".parquet":
        return False
    from curate.io.formats.parquet import find_layout

    return find_layout(pq.read_schema(path)) is None


def _tables_in(folder: Path) -> list[Path]:
    """Prompt tables directly in a folder (such as `prepare`'s output), when it holds no shards."""
    return sorted(p for p in folder.iterdir() if not p.name.startswith(".") and _is_table(p))


def _shard_rows(path: Path) -> Iterator[PromptRow]:
    import curate.io.formats.registry  # noqa: F401  (fills the format registries)
    from curate.io.formats.detect import find_shards, reader_for
    from curate.schemas.sample import Sample

    for shard in find_shards([path]):
        for record in reader_for(shard):
            if isinstance(record, Sample):
                yield PromptRow(text=record.text)


def pick_columns(names: list[str], *, text_column: str | None, plain_column: str | None, where: str) -> Columns:
    """Pairs when a basic and a detailed column exist; else the first known prompt column."""
    for option, given in (("--text-column", text_column), ("--plain-column", plain_column)):
        if given is not None and given not in names:
            raise CurateError(f"{option} '{given}' is not a column of {where} (columns: {', '.join(names)}).")
    plain = plain_column or next((c for c in PLAIN_COLUMNS if c in names), None)
    detailed = text_column or next((c for c in DETAILED_COLUMNS if c in names), None)
    if plain is not None and detailed is not None and plain != detailed:
        return Columns(text=detailed, plain=plain)
    text = text_column or next((c for c in TEXT_COLUMNS if c in names), None)
    if text is None:
        raise CurateError(
            f"No prompt column in {where} (looked for {', '.join(TEXT_COLUMNS)}; columns: "
            f"{', '.join(names)}); pass --text-column."
        )
    return Columns(text=text)


def _table_rows(path: Path, text_column: str | None, plain_column: str | None) -> Iterator[PromptRow]:
    batches = _parquet_batches(path) if path.suffix.lower() == ".parquet" else _csv_batches(path)
    first = next(batches, None)
    if first is None:
        return
    columns = pick_columns(first.schema.names, text_column=text_column, plain_column=plain_column, where=str(path))
    yield from _batch_rows(first, columns)
    for batch in batches:
        yield from _batch_rows(batch, columns)


def _batch_rows(batch: pa.RecordBatch, columns: Columns) -> Iterator[PromptRow]:
    texts = batch.column(columns.text).cast(pa.string()).to_pylist()
    plains = batch.column(columns.plain).cast(pa.string()).to_pylist() if columns.plain else [None] * len(texts)
    for text, plain in zip(texts, plains):
        yield PromptRow(text=text, plain=plain)


def _parquet_batches(path: Path) -> Iterator[pa.RecordBatch]:
    file = pq.ParquetFile(path, memory_map=True)
    if file.metadata.num_rows == 0:
        yield pa.RecordBatch.from_pylist([], schema=file.schema_arrow)
        return
    yield from file.iter_batches(batch_size=BATCH_ROWS)


def _csv_batches(path: Path) -> Iterator[pa.RecordBatch]:
    parse = pacsv.ParseOptions(delimiter=TABLE_SUFFIXES[path.suffix.lower()], newlines_in_values=True)
    convert = pacsv.ConvertOptions(strings_can_be_null=False)
    try:
        yield from pacsv.open_csv(path, parse_options=parse, convert_options=convert)
    except (pa.ArrowInvalid, OSError) as exc:
        raise CurateError(f"Could not read {path} as a table: {str(exc).splitlines()[0][:160]}.") from None


def _dataset_rows(folder: Path, text_column: str | None, plain_column: str | None) -> Iterator[PromptRow]:
    """A `datasets` table saved with `save_to_disk`; its Arrow files are memory-mapped."""
    from datasets import load_from_disk

    table = load_from_disk(str(folder))
    columns = pick_columns(list(table.column_names), text_column=text_column, plain_column=plain_column,
                           where=str(folder))
    for batch in table.data.table.to_batches(max_chunksize=BATCH_ROWS):
        yield from _batch_rows(batch, columns)
