"""The error table of a shard: one row per sample that could not be used, written as it comes.

Rows are buffered and flushed a row group at a time, and counted by kind, so the shard's
outcome can say what was refused without reading the file back.
"""

from __future__ import annotations

from collections import Counter

from curate.io.tables import ParquetTableWriter
from curate.schemas.arrow_schemas import ERRORS_SCHEMA
from curate.schemas.sample import SampleError

FLUSH_ROWS = 1024
COLUMNS = ("key", "stage", "error", "message")


class ErrorTable:
    """`errors/<shard-id>.parquet` being written: `add` rows, then `close` (publish) or `abort`."""

    def __init__(self, path: object) -> None:
        self.writer = ParquetTableWriter(path, ERRORS_SCHEMA)
        self.rows: list[SampleError] = []
        self.counts: Counter = Counter()

    def add(self, error: SampleError) -> None:
        self.rows.append(error)
        self.counts[error.error] += 1
        if len(self.rows) >= FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            self.writer.write_rows({name: [getattr(e, name) for e in self.rows] for name in COLUMNS})
            self.rows.clear()

    def close(self) -> None:
        """Publish the table (an empty one too: it says the shard had no errors)."""
        self.flush()
        self.writer.close()

    def abort(self) -> None:
        self.writer.abort()
