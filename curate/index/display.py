"""How `curate search` shows its hits: a rich table for people, JSON for programs."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Sequence

from rich.table import Table

from curate.schemas.index import SearchHit

TEXT_CHARS = 80  # captions are cut in the table (JSON keeps them whole)


def hits_table(hits: Sequence[SearchHit], *, title: str) -> Table:
    """rank, key, text, similarity, source shard."""
    table = Table(title=title, title_justify="left")
    for name, justify in (("rank", "right"), ("key", "left"), ("text", "left"), ("similarity", "right"), ("shard", "left")):
        table.add_column(name, justify=justify, overflow="fold" if name == "key" else "ellipsis")  # type: ignore[arg-type]
    for hit in hits:
        text = hit.text or ""
        short = text if len(text) <= TEXT_CHARS else text[: TEXT_CHARS - 1] + "…"
        table.add_row(str(hit.rank), hit.key, short, f"{hit.similarity:.4f}", hit.shard)
    return table


def hits_json(hits: Sequence[SearchHit], *, query: dict[str, str]) -> str:
    """`{"query": ..., "hits": [{rank, key, text, similarity, shard}, ...]}`."""
    return json.dumps({"query": query, "hits": [asdict(h) for h in hits]}, ensure_ascii=False, indent=2)
