"""Where each artefact of a run lives: one place, so every step agrees on the paths."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:
    from pathlib import Path

    from curate.io.location import RemotePath

    Location = Union[Path, RemotePath]

TABLES = ("embeddings", "errors", "scores")


@dataclass(frozen=True)
class RunLayout:
    """`RUN_DIR/{embeddings,errors,scores}/<shard-id>.parquet` and friends.

    `root` is a local folder or, for `embed` and `score`, a `RemotePath` (an object-store
    URL): every path below is then a `RemotePath` too, and the same names hold there.
    """

    root: "Location"

    def table_dir(self, table: str) -> "Location":
        return self.root / table

    def table_path(self, table: str, shard_id: str) -> "Location":
        return self.root / table / f"{shard_id}.parquet"

    def embeddings(self, shard_id: str) -> "Location":
        return self.table_path("embeddings", shard_id)

    def errors(self, shard_id: str) -> "Location":
        return self.table_path("errors", shard_id)

    def scores(self, shard_id: str) -> "Location":
        return self.table_path("scores", shard_id)

    @property
    def index_dir(self) -> "Location":
        """`RUN_DIR/index/`: FAISS indexes, ids.parquet and card.json (see schemas/index.py)."""
        return self.root / "index"

    @property
    def dedup_dir(self) -> "Location":
        """`RUN_DIR/dedup/`: dedup.parquet (key, group, kept) and summary.json."""
        return self.root / "dedup"

    def shard_files(self, table: str) -> list["Location"]:
        """The completed files of a table, sorted (temporary files are hidden dot-files)."""
        folder = self.table_dir(table)
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.glob("*.parquet") if not p.name.startswith("."))
