"""`curate sql RUN_DIR QUERY`: DuckDB over the run's views, answered as a table, CSV, JSON or Parquet.

The query only reads: one SELECT (or DESCRIBE, SUMMARIZE, SHOW, EXPLAIN), on a connection
that reaches the run's files and nothing else; `--output` is the only file written.

Results stream batch by batch from DuckDB to the sink, so `SELECT * FROM scores` over a
large run is written to CSV or Parquet without holding it in memory; only the terminal
table keeps its first `max_rows` rows (and counts the rest).
"""

from __future__ import annotations

import base64
import json
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import IO, Any, Callable, Iterator

import pyarrow as pa

from curate.errors import CurateError
from curate.io.atomic import atomic_path
from curate.io.formats.base import lookup
from curate.io.run_database import QueryStream, RunDatabase, check_reading_query
from curate.schemas.config.review import SqlConfig

MAX_CELL_CHARS = 120
MIN_COLUMN_CHARS = 12  # narrower than this per column, records are shown one by one


@dataclass
class SqlResult:
    """How many rows the query returned (all of them, not only those shown)."""

    rows: int
    columns: list[str]


def run_sql(config: SqlConfig) -> SqlResult:
    """Run `config.query` over the run's views and write the answer in `config.format`."""
    config.validate()
    writer = lookup(OUTPUTS, config.format, "--format")
    check_reading_query(config.query)
    with RunDatabase(config.run_dir, vectors=config.vectors) as db:
        stream = db.stream(config.query)
        rows = writer(stream, config)
    return SqlResult(rows=rows, columns=list(stream.schema.names))


def write_table(stream: QueryStream, config: SqlConfig) -> int:
    """A rich table on stdout with the first rows; the caption says how many there were.

    A result too wide for the terminal is shown one record per block (column | value), as
    psql's expanded mode does, instead of squeezing every column to a letter's width.
    """
    from curate.console import stdout

    shown: list[dict[str, Any]] = []
    total = 0
    for batch in stream.batches:
        room = config.max_rows - total
        if room > 0:
            shown += batch.slice(0, room).to_pylist()
        total += batch.num_rows
    caption = f"{total:,} row{'' if total == 1 else 's'}" if len(shown) == total else (
        f"first {len(shown):,} of {total:,} rows (--format csv|json|parquet writes them all)"
    )
    wide = len(stream.schema) * MIN_COLUMN_CHARS > stdout.width
    for renderable in (_records(shown, caption) if wide else [_grid(stream.schema, shown, caption)]):
        stdout.print(renderable)
    return total


def _grid(schema: pa.Schema, rows: list[dict[str, Any]], caption: str) -> Any:
    from rich.table import Table

    table = Table(caption=caption)
    for field in schema:
        table.add_column(field.name, justify="right" if _is_number(field.type) else "left", overflow="fold")
    for row in rows:
        table.add_row(*(_cell(v) for v in row.values()))
    return table


def _records(rows: list[dict[str, Any]], caption: str) -> list[Any]:
    from rich.table import Table

    blocks = []
    for number, row in enumerate(rows, start=1):
        block = Table(title=f"row {number}", title_justify="left", show_header=False)
        block.add_column(style="bold")
        block.add_column(overflow="fold")
        for name, value in row.items():
            block.add_row(name, _cell(value))
        blocks.append(block)
    return blocks + [caption]


def write_csv(stream: QueryStream, config: SqlConfig) -> int:
    """CSV with a header row; nested columns (vectors) are refused, CSV has no lists."""
    import pyarrow.csv as pacsv

    nested = [f.name for f in stream.schema if pa.types.is_nested(f.type)]
    if nested:
        raise CurateError(
            f"CSV cannot hold the list/struct column(s) {', '.join(nested)}; use --format json or parquet."
        )
    total = 0
    with _sink(config) as out, pacsv.CSVWriter(out, stream.schema) as csv:
        for batch in stream.batches:
            csv.write_batch(batch)
            total += batch.num_rows
    return total


def write_json(stream: QueryStream, config: SqlConfig) -> int:
    """One JSON array of row objects, written as the rows arrive."""
    total = 0
    with _sink(config) as out:
        out.write(b"[")
        for batch in stream.batches:
            for row in batch.to_pylist():
                out.write((b",\n" if total else b"\n") + json.dumps(row, default=_json_value).encode())
                total += 1
        out.write(b"\n]\n")
    return total


def write_parquet(stream: QueryStream, config: SqlConfig) -> int:
    """A Parquet file at --output, written under a temporary name and renamed when complete."""
    import pyarrow.parquet as pq

    total = 0
    with atomic_path(config.output) as tmp:  # type: ignore[arg-type]
        with pq.ParquetWriter(tmp, stream.schema, compression="zstd") as writer:
            for batch in stream.batches:
                writer.write_batch(batch)
                total += batch.num_rows
    return total


OUTPUTS: dict[str, Callable[[QueryStream, SqlConfig], int]] = {
    "table": write_table,
    "csv": write_csv,
    "json": write_json,
    "parquet": write_parquet,
}


@contextmanager
def _sink(config: SqlConfig) -> Iterator[IO[bytes]]:
    """--output FILE (atomic) or stdout's bytes; logs stay on stderr so pipes get data only."""
    if config.output is None:
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    with atomic_path(config.output) as tmp, open(tmp, "wb") as handle:
        yield handle


def _json_value(value: Any) -> Any:
    """JSON for what Arrow returns beyond JSON's types: times, decimals, bytes."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return str(value)


def _cell(value: Any) -> str:
    """A short, readable rendering of one value for the terminal table."""
    if value is None:
        return "∅"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list) and len(value) > 4:
        head = ", ".join(_cell(v) for v in value[:3])
        return f"[{head}, … {len(value)} values]"
    text = str(value)
    return text if len(text) <= MAX_CELL_CHARS else text[: MAX_CELL_CHARS - 1] + "…"


def _is_number(dtype: pa.DataType) -> bool:
    return pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype)
