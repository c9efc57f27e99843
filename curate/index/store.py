"""A built `RUN_DIR/index/`: its card, its FAISS files and its id map, checked before use.

`search` and `dedup` open the index through here so both refuse the same stale states with
the same sentences: no index yet, embeddings changed since it was built, projection
weights changed since it was built.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curate.errors import CurateError
from curate.index.faiss_lib import import_faiss, set_search_params, to_gpu, use_gpu
from curate.io.embeddings import row_count
from curate.models.projection import Projection, load_projection
from curate.schemas.index import IDS_FILE, INDEX_CARD_FILE, IndexCard, index_file
from curate.schemas.layout import RunLayout


def embeddings_fingerprint(files: list[Path]) -> str:
    """sha256 over each embeddings file's name, rows and size: changes when a shard is added or redone."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.name}|{row_count(path)}|{path.stat().st_size}\n".encode())
    return digest.hexdigest()


def read_index_card(folder: Path) -> IndexCard | None:
    """The card of an index folder, None when there is none (an unfinished build has none)."""
    path = Path(folder) / INDEX_CARD_FILE
    if not path.is_file():
        return None
    try:
        return IndexCard.from_text(path.read_text())
    except (ValueError, KeyError, TypeError) as exc:
        raise CurateError(f"{path} is not a valid index card ({type(exc).__name__}); rebuild with `curate index --overwrite`.") from None


@dataclass
class BuiltIndex:
    """An index folder whose card exists; open it with `BuiltIndex.open(run_dir)`."""

    run_dir: Path
    folder: Path
    card: IndexCard

    @classmethod
    def open(cls, run_dir: Path) -> "BuiltIndex":
        """The run's finished index, or one line saying what to run first."""
        if not Path(run_dir).is_dir():
            raise CurateError(f"Run directory {run_dir} does not exist.")
        folder = RunLayout(Path(run_dir)).index_dir
        card = read_index_card(folder)
        if card is None:
            raise CurateError(f"{run_dir} has no index ({folder} has no {INDEX_CARD_FILE}); "
                              f"run `curate index {run_dir} --projection PROJ_DIR` first.")
        return cls(Path(run_dir), folder, card)

    def check_current(self, files: list[Path]) -> None:
        """Refuse an index built from other embeddings than the run holds now."""
        if embeddings_fingerprint(files) != self.card.embeddings_fingerprint:
            raise CurateError(f"{self.run_dir}/embeddings changed since the index was built; "
                              f"rebuild it with `curate index {self.run_dir} --projection {self.card.projection_dir} --overwrite`.")

    def projection(self, *, device: str = "cpu") -> Projection:
        """The projection the index was built with, refusing weights that changed since."""
        model, card = load_projection(Path(self.card.projection_dir), device=device)
        if card.fingerprint != self.card.projection_fingerprint:
            raise CurateError(f"The projection in {self.card.projection_dir} changed since the index was built; "
                              f"rebuild it with `curate index {self.run_dir} --projection {self.card.projection_dir} --overwrite`.")
        return model

    def load(self, side: str, *, device: str = "auto") -> tuple[Any, bool]:
        """(index with its tuned search settings, on_gpu) for `side` (image or text)."""
        entry = self.card.indexes[side]
        index = import_faiss().read_index(str(self.folder / index_file(side)))
        on_gpu = False
        if use_gpu(device):
            index, on_gpu = to_gpu(index, entry.kind)
        set_search_params(index, entry.search, on_gpu=on_gpu)
        return index, on_gpu

    def ids(self, columns: list[str] | None = None) -> pa.Table:
        """The id map (id, key, shard), in id order."""
        return pq.read_table(self.folder / IDS_FILE, columns=columns)

    def keys_of(self, ids: np.ndarray) -> tuple[list[str], list[str]]:
        """(keys, shards) of FAISS ids (row numbers of ids.parquet)."""
        table = self.ids(["key", "shard"]).take(pa.array(np.asarray(ids, dtype=np.int64)))
        return table.column("key").to_pylist(), table.column("shard").to_pylist()


def dedup_table(run_dir: Path) -> Path:
    """`RUN_DIR/dedup/dedup.parquet` of a finished `curate dedup`, or one line saying to run it."""
    from curate.schemas.index import DEDUP_FILE, DEDUP_SUMMARY_FILE

    folder = RunLayout(Path(run_dir)).dedup_dir
    if not (folder / DEDUP_SUMMARY_FILE).is_file():
        raise CurateError(f"{run_dir} has no dedup table ({folder}); run `curate dedup {run_dir}` first.")
    return folder / DEDUP_FILE
