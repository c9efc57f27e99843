"""Where each artefact of a run lives: one place, so every step agrees on the paths."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Protocol

from curate.schemas.tables import Table

STATS_DIR = "stats"  # RUN_DIR/stats/<step>/<shard-id>.json: one outcome per finished shard


class Location(Protocol):
    """What the layout needs of a place: a local `Path`, or a URL's `RemotePath` (`io/location.py`)."""

    name: str

    def __truediv__(self, other: str) -> Any: ...

    def is_dir(self) -> bool: ...

    def glob(self, pattern: str) -> Iterable[Any]: ...


@dataclass(frozen=True)
class TableFile:
    """One shard's file of a run table, as a unit of work (`score` is handed embeddings files)."""

    shard_id: str
    path: Any  # a Location


@dataclass(frozen=True)
class RunLayout:
    """`RUN_DIR/{embeddings,errors,scores}/<shard-id>.parquet` and friends.

    `root` is a local folder or, for `embed` and `score`, a `RemotePath` (an object-store
    URL): every path below is then a `RemotePath` too, and the same names hold there.
    """

    root: Any  # a Location

    def table_dir(self, table: Table) -> Any:
        return self.root / Table(table).value

    def table_path(self, table: Table, shard_id: str) -> Any:
        return self.table_dir(table) / f"{shard_id}.parquet"

    def embeddings(self, shard_id: str) -> Any:
        return self.table_path(Table.EMBEDDINGS, shard_id)

    def errors(self, shard_id: str) -> Any:
        return self.table_path(Table.ERRORS, shard_id)

    def scores(self, shard_id: str) -> Any:
        return self.table_path(Table.SCORES, shard_id)

    def stats(self, step: str, shard_id: str) -> Any:
        """`RUN_DIR/stats/<step>/<shard-id>.json`: a finished shard's `ShardOutcome` (schemas/outcome.py)."""
        return self.root / STATS_DIR / step / f"{shard_id}.json"

    def stats_dir(self, step: str) -> Any:
        return self.root / STATS_DIR / step

    @property
    def index_dir(self) -> Any:
        """`RUN_DIR/index/`: FAISS indexes, ids.parquet and card.json (see schemas/index.py)."""
        return self.root / "index"

    @property
    def native_dir(self) -> Any:
        """`RUN_DIR/native/`: the card of `--projection native` (the encoders' own joint space)."""
        return self.root / "native"

    @property
    def null_dir(self) -> Any:
        """`RUN_DIR/null/`: the null distribution of each scoring projection (`<fingerprint>.parquet`)."""
        return self.root / "null"

    def null(self, scoring: str) -> Any:
        return self.null_dir / f"{scoring}.parquet"

    @property
    def dedup_dir(self) -> Any:
        """`RUN_DIR/dedup/`: dedup.parquet (key, group, kept) and summary.json."""
        return self.root / "dedup"

    def shard_files(self, table: Table) -> list[Any]:
        """The completed files of a table, sorted (temporary files are hidden dot-files)."""
        folder = self.table_dir(table)
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.glob("*.parquet") if not p.name.startswith("."))
