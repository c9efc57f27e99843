"""Configs of the vector store: `index`, `search`, `dedup`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from curate.errors import CurateError
from curate.schemas.config.checks import at_least, one_of, within
from curate.schemas.config.flow import device_option, projection_option, run_dir_argument
from curate.schemas.config.options import check_fields, option

INDEX_KIND_NAMES = ("flat", "ivf-flat", "ivf-pq", "hnsw")  # `curate.index.kinds.INDEX_KINDS` holds exactly these


@dataclass(frozen=True)
class IndexConfig:
    """Build FAISS indexes over the projected image and text vectors: RUN_DIR/index/."""

    run_dir: Path = run_dir_argument("Run directory whose embeddings/ are indexed (writes RUN_DIR/index/).", "index path")
    projection: Path = projection_option("index path")
    max_index_memory: str = option("2GB", "Memory budget per index, e.g. 512MB, 2GB, 16GiB.")
    index_type: str = option("auto", "auto, flat, ivf-flat, ivf-pq or hnsw.", check=one_of(("auto", *INDEX_KIND_NAMES)))
    target_recall: float = option(0.95, "recall@10 the search settings are tuned to reach.",
                                  check=within(0, 1, low_open=True))
    recall_queries: int = option(1000, "Indexed vectors searched exactly to measure recall.", check=at_least(1))
    device: str = device_option("auto (GPU FAISS when installed and a GPU is present), cpu or cuda.")
    seed: int = 0
    overwrite: bool = option(False, "Rebuild an existing index.")

    @property
    def memory_budget(self) -> int:
        from curate.units import parse_size

        return parse_size(self.max_index_memory, option="--max-index-memory")

    def validate(self) -> None:
        check_fields(self)
        if self.memory_budget <= 0:
            raise CurateError(f"--max-index-memory must be positive (got {self.max_index_memory}).")


@dataclass(frozen=True)
class SearchConfig:
    """The pairs nearest in meaning to a text or an image query, best first."""

    run_dir: Path = run_dir_argument("Run directory with an index (made by `curate index`).", "search path")
    text: str | None = option(None, "Find the pairs whose images show this.", flags=("--text",))
    image: Path | None = option(None, "Find the pairs whose images look like this file.", flags=("--image",))
    k: int = option(20, "How many pairs to return.", flags=("-k",), check=at_least(1))
    target: str = option("image", "Index searched: image (default) or text (captions).", check=one_of(("image", "text")))
    json: bool = option(False, "Print JSON on stdout instead of a table.", flags=("--json",))
    device: str = device_option("auto, cpu or cuda (encoders and FAISS).")

    def validate(self) -> None:
        check_fields(self)
        if (self.text is None) == (self.image is None):
            raise CurateError("Give exactly one query: --text \"...\" or --image FILE.")
        if self.text is not None and not self.text.strip():
            raise CurateError("--text is empty; give words to search for.")


@dataclass(frozen=True)
class DedupConfig:
    """Group near-duplicate images, keep the best-aligned of each: RUN_DIR/dedup/."""

    run_dir: Path = run_dir_argument("Run directory with an index (made by `curate index`).", "dedup path")
    threshold: float = option(0.95, "Cosine of projected image vectors at or above which two images are one.",
                              check=within(0, 1, low_open=True, note=", a cosine similarity"))
    neighbours: int = option(16, "Nearest images each image is compared with.", check=at_least(2))
    device: str = device_option("auto, cpu or cuda (FAISS).")
    overwrite: bool = option(False, "Redo an existing dedup table.")

    def validate(self) -> None:
        check_fields(self)
