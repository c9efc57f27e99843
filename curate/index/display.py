"""How `curate search` shows its hits: a rich table for people, JSON for programs."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Sequence

from rich.table import Table

from curate.index.explain import Explanation
from curate.schemas.index import SearchHit

TEXT_CHARS = 80  # captions are cut in the table (JSON keeps them whole)


def hits_table(hits: Sequence[SearchHit], *, title: str) -> Table:
    """rank, key, text, similarity, source shard."""
    table = Table(title=title, title_justify="left")
    for name, justify in (("rank", "right"), ("key", "left"), ("text", "left"), ("similarity", "right"), ("shard", "left")):
        table.add_column(name, justify=justify, overflow="fold" if name == "key" else "ellipsis")  # type: ignore[arg-type]
    for hit in hits:
        table.add_row(str(hit.rank), hit.key, _short(hit.text), f"{hit.similarity:.4f}", hit.shard)
    return table


def hits_json(hits: Sequence[SearchHit], *, query: dict[str, str]) -> str:
    """`{"query": ..., "hits": [{rank, key, text, similarity, shard}, ...]}`."""
    return json.dumps({"query": query, "hits": [asdict(h) for h in hits]}, ensure_ascii=False, indent=2)


def explanation_table(explanation: Explanation, *, title: str) -> Table:
    """The pair (caption, similarity, false-match rate), then the captions its image lies nearest to."""
    own = [f"{explanation.similarity:.4f}" if explanation.similarity is not None else "-",
           f"{explanation.false_match_rate:.4f}" if explanation.false_match_rate is not None else "-"]
    table = Table(title=f"{title}\n{explanation.key}: similarity {own[0]}, false-match rate {own[1]}\n"
                        f"its caption: {_short(explanation.text)}\nthis image looks more like:", title_justify="left")
    for name, justify in (("rank", "right"), ("caption", "left"), ("similarity", "right"), ("key", "left")):
        table.add_column(name, justify=justify, overflow="fold" if name == "key" else "ellipsis")  # type: ignore[arg-type]
    for rank, near in enumerate(explanation.nearest, start=1):
        table.add_row(str(rank), _short(near.text), f"{near.similarity:.4f}", near.key)
    table.caption = f"searched: {explanation.space}"
    return table


def explanation_json(explanation: Explanation) -> str:
    """`{"key", "text", "similarity", "false_match_rate", "nearest": [{key, text, similarity}], "space"}`."""
    return json.dumps(asdict(explanation), ensure_ascii=False, indent=2)


def _short(text: str | None) -> str:
    text = text or ""
    return text if len(text) <= TEXT_CHARS else text[: TEXT_CHARS - 1] + "…"
