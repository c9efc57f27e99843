"""Configs of the vector store: `index`, `search`, `dedup`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from curate.errors import CurateError
from curate.schemas.config.checks import at_least, not_blank, one_of, size_at_least, within
from curate.schemas.config.flow import device_option, projection_option, run_dir_argument
from curate.schemas.config.options import check_fields, option

INDEX_KIND_NAMES = ("flat", "ivf-flat", "ivf-pq", "hnsw")  # `curate.index.kinds.INDEX_KINDS` holds exactly these
# FAISS allocates k results per query up front: absurd values fail here, in one line, not in malloc.
MAX_K = 10_000
MAX_NEIGHBOURS = 1024  # dedup holds rows x neighbours ids and distances; GPU FAISS stops at 2048


@dataclass(frozen=True)
class IndexConfig:
    """Build FAISS indexes over the projected image and text vectors: RUN_DIR/index/."""

    run_dir: Path = run_dir_argument("Run directory whose embeddings/ are indexed (writes RUN_DIR/index/).", "index path")
    projection: Path = projection_option("index path")
    max_index_memory: str = option("2GB", "Memory budget per index, e.g. 512MB, 2GB, 16GiB.", check=size_at_least(1))
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


@dataclass(frozen=True)
class SearchConfig:
    """The pairs nearest in meaning to a text or an image query, best first."""

    run_dir: Path = run_dir_argument("Run directory with an index (made by `curate index`).", "search path")
    text: str | None = option(None, "Find the pairs whose images show this.", flags=("--text",))
    image: Path | None = option(None, "Find the pairs whose images look like this file.", flags=("--image",))
    key: str | None = option(None, "Query with the stored image of this pair of the run (its key).", flags=("--key",),
                             check=not_blank)
    explain: bool = option(False, "With --key: the run's captions nearest to the pair's image, what it looks more "
                           "like (the index when built, else an exact search in the space that scored it).",
                           flags=("--explain",))
    k: int = option(20, "How many pairs (or, with --explain, captions) to return.", flags=("-k",),
                    check=within(1, MAX_K))
    target: str = option("image", "Index searched: image (default) or text (captions).", check=one_of(("image", "text")))
    json: bool = option(False, "Print JSON on stdout instead of a table.", flags=("--json",))
    device: str = device_option("auto, cpu or cuda (encoders and FAISS).")

    def validate(self) -> None:
        check_fields(self)
        if sum(q is not None for q in (self.text, self.image, self.key)) != 1:
            raise CurateError("Give exactly one query: --text \"...\", --image FILE or --key KEY.")
        if self.explain and self.key is None:
            raise CurateError("--explain explains a pair of the run: give its --key.")
        if self.text is not None and not self.text.strip():
            raise CurateError("--text is empty; give words to search for.")


@dataclass(frozen=True)
class DedupConfig:
    """Group near-duplicate images, keep the best-aligned of each: RUN_DIR/dedup/."""

    run_dir: Path = run_dir_argument("Run directory with an index (made by `curate index`).", "dedup path")
    threshold: float = option(0.95, "Cosine of projected image vectors at or above which two images are one.",
                              check=within(0, 1, low_open=True, note=", a cosine similarity"))
    neighbours: int = option(16, "Nearest images each image is compared with.", check=within(2, MAX_NEIGHBOURS))
    device: str = device_option("auto, cpu or cuda (FAISS).")
    overwrite: bool = option(False, "Redo an existing dedup table.")

    def validate(self) -> None:
        check_fields(self)
