"""The columns every scores file of a run shares, so the run reads as one table.

Every scores file of a run has the same columns, in the same order, with the same types:
key, text, similarity, the projection's further scores (SigLIP's `match_probability`), the
`false_match_rate`, then the meta columns of all its shards unified (`unified_meta`), nulls
where a source lacks one. So DuckDB, pyarrow datasets, pandas, polars and `datasets` read `RUN_DIR/scores/` as
one table. A scores file whose columns differ from the run's is rescored (its shard is in
this run's inputs) or widened in place (it is not): nothing is ever re-embedded.
"""

from __future__ import annotations

import logging

import pyarrow as pa

from curate.io.location import Location, io_map
from curate.io.tables import ParquetTableWriter, read_table, table_schema
from curate.schemas.arrow_schemas import SCORE_EXTRAS, meta_of, scores_columns, unified_meta
from curate.schemas.layout import RunLayout
from curate.schemas.tables import FALSE_MATCH_RATE, Table

log = logging.getLogger("curate")


def run_meta(files: list[Location], layout: RunLayout, *, remote: bool) -> pa.Schema:
    """The meta columns every scores file of the run gets: those of the embeddings being scored
    and of the run's other scores files, unified in shard-id order (so the columns' order does
    not depend on the order the inputs were given in)."""
    others = _not_scored_now(layout, files)
    tables = sorted(files + others, key=lambda path: path.stem)
    meta, _ = unified_meta(meta_of(schema) for schema in io_map(table_schema, tables, remote=remote))
    return meta


def widen_scores(path: Location, meta: pa.Schema) -> bool:
    """Rewrite a scores file with the run's columns (nulls for the ones it lacks), keeping its
    rows, its own further scores and its metadata; False when it already has them."""
    table = read_table(path)
    want = scores_columns(meta, extra=tuple(n for n in SCORE_EXTRAS if n in table.column_names),
                          rated=FALSE_MATCH_RATE in table.column_names)
    if table.schema.remove_metadata().equals(want):
        return False
    writer = ParquetTableWriter(path, want.with_metadata(table.schema.metadata))
    try:
        writer.write_rows({name: table.column(name) for name in table.column_names if name in want.names})
        writer.close()
    except BaseException:
        writer.abort()
        raise
    return True


def widen_others(layout: RunLayout, files: list[Location], meta: pa.Schema, *, remote: bool) -> None:
    """Give the run's scores files this run does not rescore the run's columns."""
    widened = sum(io_map(lambda path: widen_scores(path, meta), _not_scored_now(layout, files), remote=remote))
    if widened:
        log.info("%d scores files of shards not scored now got the run's new meta columns (nulls)", widened)


def _not_scored_now(layout: RunLayout, files: list[Location]) -> list[Location]:
    scored = {f.stem for f in files}
    return [p for p in layout.shard_files(Table.SCORES) if p.stem not in scored]
