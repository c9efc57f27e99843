"""The lowest- and highest-aligned pairs, with small thumbnails made from their source images.

Scores hold no image bytes, only a pointer to the source shard (`ScoresInfo.source` and
`format`). Only the shards that hold a shown pair are re-read, through the registered reader
of their format, and each is read only until all its wanted keys have turned up. Images go
through the same checked decoder the embedding step uses, so a hostile file cannot blow up
the report.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass

import pyarrow.parquet as pq

from curate.io.formats.base import Shard
from curate.io.formats.registry import READERS, sidecars_of
from curate.io.location import Location, location
from curate.io.mirror import ShardMirror
from curate.io.run_database import RunDatabase
from curate.models.preprocess import (
    DEFAULT_MAX_PIXELS,
    ImageDecodeError,
    _load_rgb,
    _open_checked,
)
from curate.schemas.layout import RunLayout
from curate.schemas.sample import Sample
from curate.schemas.tables import read_scores_info

log = logging.getLogger("curate")


@dataclass
class Pair:
    """One shown pair; `thumbnail` is JPEG bytes, or None with `note` saying why."""

    key: str
    text: str
    similarity: float
    thumbnail: bytes | None = None
    note: str = ""

    @property
    def shard_id(self) -> str:
        return self.key.split("/", 1)[0]


@dataclass
class ExtremePairs:
    """What the report's two thumbnail grids show."""

    lowest: list[Pair]
    highest: list[Pair]


def extreme_pairs(db: RunDatabase, *, count: int, pairs: int) -> ExtremePairs:
    """`count` pairs split between the lowest and highest similarity (DuckDB's top-N, no sort).

    The two ends never overlap: a run smaller than `count` shows every pair exactly once.
    """
    low = min(-(-count // 2), -(-pairs // 2))
    high = min(count // 2, pairs // 2)
    return ExtremePairs(lowest=_ends(db, low, "ASC"), highest=_ends(db, high, "DESC"))


def _ends(db: RunDatabase, limit: int, order: str) -> list[Pair]:
    if limit <= 0:
        return []
    rows = db.arrow(
        f"SELECT key, text, similarity FROM scores ORDER BY similarity {order}, key LIMIT {int(limit)}"
    ).to_pylist()
    return [Pair(key=r["key"], text=r["text"] or "", similarity=r["similarity"]) for r in rows]


def attach_thumbnails(pairs: list[Pair], layout: RunLayout, *, px: int) -> None:
    """Fill each pair's thumbnail by re-reading only the source shards that hold them."""
    by_shard: dict[str, list[Pair]] = {}
    for pair in pairs:
        by_shard.setdefault(pair.shard_id, []).append(pair)
    gone: list[Location] = []
    for shard_id, wanted in sorted(by_shard.items()):
        shard = _source_shard(layout, shard_id)
        if shard is None:
            _note(wanted, "source shard unknown")
        elif not shard.path.exists():
            gone.append(shard.path)
            _note(wanted, f"source {shard.path} is gone")
        else:
            with ShardMirror(sidecars_of) as mirror, mirror.local(shard) as local:
                _read_images(local, wanted, px=px)
    if gone:
        log.warning("no thumbnails from %d source shard(s) that have moved or gone, e.g. %s", len(gone), gone[0])


def _source_shard(layout: RunLayout, shard_id: str) -> Shard | None:
    """Where the scores file of `shard_id` says its images came from."""
    path = layout.scores(shard_id)
    try:
        info = read_scores_info(pq.read_schema(path))
    except (OSError, KeyError, TypeError, ValueError):
        return None
    if info.format not in READERS:
        return None
    return Shard(path=location(info.source), format=info.format, shard_id=info.shard_id)


def _read_images(shard: Shard, wanted: list[Pair], *, px: int) -> None:
    """Stream the shard until every wanted key is found; decode only those images."""
    waiting = {pair.key: pair for pair in wanted}
    try:
        for record in READERS[shard.format](shard):
            pair = waiting.get(record.key) if isinstance(record, Sample) else None
            if pair is None:
                continue
            pair.thumbnail, pair.note = _thumbnail(record.image, px=px)
            del waiting[record.key]
            if not waiting:
                return
    except Exception as exc:  # noqa: BLE001 - a broken source costs a thumbnail, not the report
        log.warning("could not read %s for thumbnails: %s", shard.path, exc)
    _note(list(waiting.values()), "not found in its source shard")


def _thumbnail(data: bytes | None, *, px: int) -> tuple[bytes | None, str]:
    """JPEG bytes of the image shrunk to fit `px` x `px`, or None and the reason."""
    if data is None:
        return None, "no image bytes"
    try:
        image = _load_rgb(_open_checked(data, DEFAULT_MAX_PIXELS), px)
    except ImageDecodeError as exc:
        return None, f"{exc.kind}: {exc}"
    image.thumbnail((px, px))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    return out.getvalue(), ""


def _note(pairs: list[Pair], why: str) -> None:
    for pair in pairs:
        if pair.thumbnail is None and not pair.note:
            pair.note = why
