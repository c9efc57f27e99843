"""Writing rows of generated prompts: CSV (a file or stdout) or Parquet, a batch at a time.

The format is picked from the file suffix through a registry; a file is written under a
temporary name and renamed when complete, so a killed run never leaves half a table.
"""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path
from typing import Any, TextIO

import pyarrow as pa
import pyarrow.parquet as pq

from curate.errors import CurateError
from curate.io.location import tmp_name

Rows = list[dict[str, Any]]


class PromptTableWriter:
    """Base: `write(rows)` per batch, `close()` publishes, `abort()` drops the partial file."""

    def __init__(self, path: Path | None, columns: list[str]) -> None:
        self.path, self.columns = path, columns
        self.tmp = tmp_name(path) if path is not None else None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, rows: Rows) -> None:
        raise NotImplementedError

    def _finish(self) -> None:
        """Flush and close the underlying file."""

    def close(self) -> None:
        self._finish()
        if self.tmp is not None and self.path is not None:
            os.replace(self.tmp, self.path)

    def abort(self) -> None:
        self._finish()
        if self.tmp is not None:
            self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> "PromptTableWriter":
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        self.close() if exc_type is None else self.abort()


class CsvPromptWriter(PromptTableWriter):
    """CSV with a header; to stdout when no path is given, so the output can be piped."""

    def __init__(self, path: Path | None, columns: list[str], *, stream: TextIO | None = None) -> None:
        super().__init__(path, columns)
        self.handle: TextIO = open(self.tmp, "w", newline="", encoding="utf-8") if self.tmp else (stream or sys.stdout)
        self.writer = csv.DictWriter(self.handle, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
        self.writer.writeheader()

    def write(self, rows: Rows) -> None:
        self.writer.writerows(rows)
        self.handle.flush()

    def _finish(self) -> None:
        if self.tmp is not None and not self.handle.closed:
            self.handle.close()


class ParquetPromptWriter(PromptTableWriter):
    """Parquet, one row group per batch; every column is kept as the type of its first values."""

    def __init__(self, path: Path | None, columns: list[str], *, stream: TextIO | None = None) -> None:
        if path is None:
            raise CurateError("Parquet output needs a file: pass --out FILE.parquet.")
        super().__init__(path, columns)
        self.writer: pq.ParquetWriter | None = None

    def write(self, rows: Rows) -> None:
        if not rows:
            return
        table = pa.Table.from_pylist([{c: r.get(c) for c in self.columns} for r in rows])
        if self.writer is None:
            self.writer = pq.ParquetWriter(str(self.tmp), table.schema)
        self.writer.write_table(table.cast(self.writer.schema))

    def _finish(self) -> None:
        if self.writer is None and self.tmp is not None and not self.tmp.exists():
            pq.write_table(pa.table({c: pa.array([], pa.string()) for c in self.columns}), str(self.tmp))
        elif self.writer is not None:
            self.writer.close()
            self.writer = None


PROMPT_WRITERS: dict[str, type[PromptTableWriter]] = {".csv": CsvPromptWriter, ".parquet": ParquetPromptWriter}


def open_prompt_table(path: Path | None, columns: list[str]) -> PromptTableWriter:
    """A writer for `path` by its suffix (CSV on stdout when None); refuses unknown suffixes."""
    if path is None:
        return CsvPromptWriter(None, columns)
    writer = PROMPT_WRITERS.get(Path(path).suffix.lower())
    if writer is None:
        raise CurateError(f"Cannot write {path}: known suffixes are {', '.join(sorted(PROMPT_WRITERS))}.")
    return writer(Path(path), columns)
