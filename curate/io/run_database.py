"""DuckDB views over a run's tables, so `sql`, `report` and `filter --where` see one schema.

A view per table (`scores`, `embeddings`, `errors`) reads the completed shard files of that
table, columns matched by name, so shards whose meta columns differ still stack; `stats` and
`stages` hold each finished shard's outcome (rows, errors, seconds per stage: `stats/`). A table
with no files gets no view: a query naming it is told which views exist instead. The
vector columns are left out of `embeddings` unless asked for, because a stray `SELECT *`
over millions of 2048-d rows is never what a user meant.

File names are data (a shard may be called `0*.tar`): the files are handed to DuckDB as a
pyarrow dataset of exact paths, never as a path string DuckDB would expand as a glob. The
connection reaches nothing else: external access (files, URLs, extensions) is off and its
configuration is locked once the views exist, so a query can read the run and nothing
more, and writes nothing (`open_connection`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from curate.errors import CurateError
from curate.io.stats_files import outcome_tables
from curate.schemas.arrow_schemas import unified_meta
from curate.schemas.layout import RunLayout
from curate.schemas.tables import Table

if TYPE_CHECKING:
    import duckdb
    import pyarrow.dataset as ds

VECTOR_COLUMNS = ("image_emb", "text_emb")
# What `curate sql` runs: statements that only read (DESCRIBE, SHOW, SUMMARIZE and WITH parse as SELECT).
READING_STATEMENTS = ("SELECT", "EXPLAIN")
WHAT_MAKES = {Table.EMBEDDINGS: "curate embed", Table.ERRORS: "curate embed", Table.SCORES: "curate score"}


@dataclass
class QueryStream:
    """A query's columns, known before any row, and its rows as they come."""

    schema: pa.Schema
    batches: Iterator[pa.RecordBatch]


class RunDatabase:
    """An in-memory DuckDB connection with one view per table the run holds."""

    def __init__(self, run_dir: Path, *, vectors: bool = False) -> None:
        self.layout = RunLayout(Path(run_dir))
        if not self.layout.root.is_dir():
            raise CurateError(f"Run directory {run_dir} does not exist.")
        self.con: duckdb.DuckDBPyConnection = open_connection()
        self.views: list[str] = []
        self.vectors = vectors
        for table in Table:
            files = self.layout.shard_files(table)
            if files:
                hidden = VECTOR_COLUMNS if not vectors and table == Table.EMBEDDINGS else ()
                self.con.register(table.value, table_dataset(files, leave_out=hidden))
                self.views.append(table)
        for name, outcomes in outcome_tables(self.layout).items():  # where the time went (`stats/`)
            self.con.register(name, outcomes)
            self.views.append(name)
        lock(self.con)
        if not self.views:
            raise CurateError(f"{run_dir} holds no {', '.join(t.value for t in Table)} files; is it a run directory?")

    def require(self, table: str) -> None:
        """Refuse early, naming the command that makes `table`, when the run lacks it."""
        if table not in self.views:
            raise CurateError(self._missing_message(table))

    def stream(self, query: str, *, rows_per_batch: int = 65_536) -> QueryStream:
        """The result in record batches: large answers never sit in memory whole.

        Errors DuckDB raises while the batches are read (a cast failing on row 10 million)
        arrive as the same one-line `CurateError` as errors in the query text.
        """
        reader = self._reader(query, rows_per_batch)
        return QueryStream(schema=reader.schema, batches=self._guarded(reader))

    def arrow(self, query: str, params: list | None = None) -> pa.Table:
        """The whole result as an Arrow table (for small, aggregated answers)."""
        import duckdb

        try:
            relation = self.con.sql(query, params=params)
            return relation.to_arrow_table() if relation is not None else pa.table({})
        except (duckdb.Error, pa.ArrowException, OSError) as exc:
            raise CurateError(self._explain(exc)) from None

    def _reader(self, query: str, rows_per_batch: int) -> pa.RecordBatchReader:
        import duckdb

        try:
            relation = self.con.sql(query)
            if relation is None:
                return pa.RecordBatchReader.from_batches(pa.schema([]), [])
            return relation.to_arrow_reader(rows_per_batch)
        except (duckdb.Error, pa.ArrowException, OSError) as exc:
            raise CurateError(self._explain(exc)) from None

    def _guarded(self, reader: pa.RecordBatchReader) -> Iterator[pa.RecordBatch]:
        import duckdb

        try:
            yield from reader
        except (duckdb.Error, pa.ArrowException, OSError) as exc:
            raise CurateError(self._explain(exc)) from None

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> "RunDatabase":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _explain(self, exc: Exception) -> str:
        """DuckDB's message on one line; a missing run table also says which views exist."""
        text = one_line(str(exc))
        missing = re.search(r"Table with name (\w+) does not exist", str(exc))
        if missing and missing.group(1).lower() in {t.value for t in Table}:
            return self._missing_message(missing.group(1).lower())
        if not self.vectors and any(f'"{name}" not found' in text for name in VECTOR_COLUMNS):
            return f"{text} (the vector columns are hidden; pass --vectors to query them)"
        return text

    def _missing_message(self, table: str) -> str:
        return (
            f"{self.layout.root} has no {table}/ files (made by `{WHAT_MAKES[table]}`); "
            f"views in this run: {', '.join(self.views)}."
        )


def check_reading_query(query: str) -> None:
    """Refuse anything but one statement that reads: `curate sql` never writes, attaches or
    configures (its --output is the only file it writes). The locked connection refuses these
    too; this says so in words before DuckDB sees the query."""
    import duckdb

    try:
        statements = duckdb.extract_statements(query)
    except duckdb.Error as exc:
        raise CurateError(one_line(str(exc))) from None
    if len(statements) != 1:
        raise CurateError(f"Give one query; this text holds {len(statements)} statements.")
    kind = statements[0].type.name
    if kind not in READING_STATEMENTS:
        raise CurateError(
            f"curate sql only reads the run: a {kind} statement is refused. To keep an answer, pass "
            "--format csv|json|parquet --output FILE."
        )


def one_line(message: str) -> str:
    """DuckDB's multi-line error without the `LINE 1: ... ^^^` caret drawing, on one line."""
    kept = []
    for line in message.splitlines():
        stripped = line.strip()
        if line.startswith("LINE ") or (stripped and set(stripped) <= {"^"}):
            break
        if stripped:
            kept.append(stripped)
    return " ".join(kept) or message.strip()


def open_connection() -> "duckdb.DuckDBPyConnection":
    """An in-memory DuckDB that reaches nothing but what is registered on it.

    No files or URLs (so no `COPY ... TO`, `ATTACH 'file'`, `read_text('/etc/...')`), no
    extensions installed or loaded, no Python variables found by name; spilled intermediate
    results go to this process's scratch folder, not the working directory. Call `lock`
    once the views exist, so a query cannot switch any of this back on.
    """
    import duckdb

    from curate.io.scratch import scratch_dir

    return duckdb.connect(":memory:", config={
        "enable_external_access": False,
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
        "python_enable_replacements": False,
        "temp_directory": str(scratch_dir() / "duckdb"),
    })


def lock(con: "duckdb.DuckDBPyConnection") -> None:
    """Freeze the connection's configuration (`SET`, `PRAGMA`, `RESET` fail from here on)."""
    con.execute("SET lock_configuration = true")


def table_dataset(files: list[Path], *, leave_out: tuple[str, ...] = (), schema: pa.Schema | None = None) -> "ds.Dataset":
    """The files as one dataset, by exact path: columns matched by name (a file lacking one
    gives NULLs), types widened where files differ, `leave_out` columns never read."""
    import pyarrow.dataset as ds

    schema = schema if schema is not None else union_schema(files, leave_out=leave_out)
    return ds.dataset([str(f) for f in files], schema=schema, format="parquet")


def union_schema(files: list[Path], *, leave_out: tuple[str, ...] = ()) -> pa.Schema:
    """One schema over the files' footers (as DuckDB's `union_by_name` would stack them)."""
    merged, _ = unified_meta(pq.read_schema(f) for f in files)
    return pa.schema([f.with_type(duckdb_readable(f.type)) for f in merged if f.name not in leave_out])


def duckdb_readable(dtype: pa.DataType) -> pa.DataType:
    """`dtype` with half floats (the vectors' storage) read as float32: DuckDB has no float16."""
    if pa.types.is_float16(dtype):
        return pa.float32()
    if pa.types.is_fixed_size_list(dtype):
        return pa.list_(duckdb_readable(dtype.value_type), dtype.list_size)
    if pa.types.is_list(dtype):
        return pa.list_(duckdb_readable(dtype.value_type))
    if pa.types.is_large_list(dtype):
        return pa.large_list(duckdb_readable(dtype.value_type))
    return dtype
