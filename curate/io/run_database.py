"""DuckDB views over a run's tables, so `sql`, `report` and `filter --where` see one schema.

A view per table (`scores`, `embeddings`, `errors`) reads the completed shard files of that
table with `union_by_name`, so shards whose meta columns differ still stack. A table with
no files gets no view: a query naming it is told which views exist instead of failing on
an empty glob. The vector columns are left out of `embeddings` unless asked for, because a
stray `SELECT *` over millions of 2048-d rows is never what a user meant.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import pyarrow as pa

from curate.errors import CurateError
from curate.schemas.layout import RunLayout
from curate.schemas.tables import Table

if TYPE_CHECKING:
    import duckdb

VECTOR_COLUMNS = ("image_emb", "text_emb")
WHAT_MAKES = {Table.EMBEDDINGS: "curate embed", Table.ERRORS: "curate embed", Table.SCORES: "curate score"}


@dataclass
class QueryStream:
    """A query's columns, known before any row, and its rows as they come."""

    schema: pa.Schema
    batches: Iterator[pa.RecordBatch]


class RunDatabase:
    """An in-memory DuckDB connection with one view per table the run holds."""

    def __init__(self, run_dir: Path, *, vectors: bool = False) -> None:
        import duckdb

        self.layout = RunLayout(Path(run_dir))
        if not self.layout.root.is_dir():
            raise CurateError(f"Run directory {run_dir} does not exist.")
        self.con: duckdb.DuckDBPyConnection = duckdb.connect(":memory:")
        self.views: list[str] = []
        self.vectors = vectors
        for table in Table:
            files = self.layout.shard_files(table)
            if files:
                self.con.execute(_view_sql(table, files, hide_vectors=not vectors and table == Table.EMBEDDINGS))
                self.views.append(table)
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


def _view_sql(table: str, files: list[Path], *, hide_vectors: bool) -> str:
    listed = ", ".join(sql_literal(str(f)) for f in files)
    columns = f"* EXCLUDE ({', '.join(VECTOR_COLUMNS)})" if hide_vectors else "*"
    return f"CREATE VIEW {table} AS SELECT {columns} FROM read_parquet([{listed}], union_by_name = true)"


def sql_literal(text: str) -> str:
    """A SQL string literal (paths may hold quotes)."""
    return "'" + text.replace("'", "''") + "'"
