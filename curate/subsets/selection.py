"""Which scored pairs a subset keeps, decided by DuckDB over `RUN_DIR/scores/*.parquet`.

The scores files are one view (`union_by_name`, so shards whose meta columns differ still
stack: the same `scores` schema `curate sql` shows) plus a hidden column naming the file
each row came from. Every criterion is a boolean SQL expression; a row is kept when all
hold. `--top-fraction` is turned into a global threshold first (the similarity and key of
the last row kept, ties broken by key), so afterwards it is a per-row predicate like the
others and kept keys can be fetched one scores file at a time: memory holds one shard's
keys, never the run's.

Similarity is compared in double precision and NaN never passes a similarity criterion
(DuckDB orders NaN above every number, which would otherwise let it through --min-sim);
a criterion that is NULL for a row (a meta column the row lacks) drops it.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from curate.errors import CurateError
from curate.io.run_database import one_line, sql_literal
from curate.schemas.config.flow import FilterConfig
from curate.schemas.manifest import KEPT

if TYPE_CHECKING:
    import duckdb

FILE_COLUMN = "__scores_file"
SIM = "CAST(similarity AS DOUBLE)"
# `isnan(similarity)` alone is not enough: Parquet min/max statistics leave NaN out, and
# DuckDB (2.0) trusts them to decide a row group holds no NaN; `random()` (only reached for
# a NULL) makes the expression opaque to that shortcut, so every row is really checked.
NOT_NAN = "NOT isnan(coalesce(similarity, random()))"


@dataclass(frozen=True)
class Criterion:
    """A keep-condition: `sql` is true for rows to keep; `reason` labels the rows it drops."""

    reason: str
    sql: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TopThreshold:
    """The last row inside the top fraction: keep rows ranking at or above it."""

    rows: int  # how many rows the fraction asks for
    similarity: float | None  # None: fewer rows with a number than asked for, all are kept
    key: str | None


@dataclass(frozen=True)
class Selection:
    """The criteria in the order drops are attributed, and the top-fraction cut if any."""

    criteria: tuple[Criterion, ...]
    threshold: TopThreshold | None = None
    where: str | None = None  # the user's predicate, to name it when DuckDB fails on the data

    @property
    def doing(self) -> str:
        return f"applying --where {self.where!r}" if self.where else "applying the criteria"

    @property
    def params(self) -> dict[str, Any]:
        return {k: v for c in self.criteria for k, v in c.params.items()}

    def keep_sql(self) -> str:
        """All criteria ANDed (TRUE when there are none)."""
        return " AND ".join(_definite(c) for c in self.criteria) or "TRUE"

    def outcome_sql(self) -> str:
        """A CASE naming the first criterion a row fails, or `kept` (the same rows as keep_sql)."""
        if not self.criteria:
            return f"'{KEPT}'"
        cases = " ".join(f"WHEN NOT {_definite(c)} THEN '{c.reason}'" for c in self.criteria)
        return f"CASE {cases} ELSE '{KEPT}' END"


def _definite(criterion: Criterion) -> str:
    """The criterion with NULL as false: a NULL would slip through CASE's WHEN NOT but not
    through WHERE, and the counts would stop matching the rows written."""
    return f"coalesce(({criterion.sql}), false)"


class ScoresDatabase:
    """An in-memory DuckDB connection with a `scores` view over the given scores files."""

    def __init__(self, files: list[Path]) -> None:
        import duckdb

        self.files = [str(f) for f in files]
        self.con: duckdb.DuckDBPyConnection = duckdb.connect(":memory:")
        listed = ", ".join(sql_literal(f) for f in self.files)
        self.rows(
            f"CREATE TEMP VIEW scores AS SELECT * FROM read_parquet([{listed}], "
            f"union_by_name = true, filename = '{FILE_COLUMN}')", what="reading the scores files",
        )

    def rows(self, sql: str, params: dict[str, Any] | None = None, *, what: str) -> list[tuple]:
        """Run `sql`; any DuckDB failure becomes one line that says what was being done."""
        import duckdb

        try:
            return self.con.execute(sql, params or {}).fetchall()
        except duckdb.Error as exc:
            raise CurateError(f"{what}: {one_line(str(exc))}") from None

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> "ScoresDatabase":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def build_selection(config: FilterConfig, db: ScoresDatabase) -> Selection:
    """The criteria `config` asks for; a --where DuckDB cannot bind fails here, before any work."""
    threshold = top_threshold(db, config.top_fraction) if config.top_fraction is not None else None
    criteria = tuple(c for make in CRITERIA for c in [make(config, threshold)] if c is not None)
    if config.where is not None:
        probe = f"SELECT count(*) FROM (SELECT * FROM scores LIMIT 0) WHERE coalesce(({config.where}), false)"
        db.rows(probe, what=f"--where {config.where!r}")
    return Selection(criteria=criteria, threshold=threshold, where=config.where)


def _min_sim(config: FilterConfig, _top: TopThreshold | None) -> Criterion | None:
    if config.min_sim is None:
        return None
    return Criterion("below_min_sim", f"{NOT_NAN} AND {SIM} >= $min_sim", {"min_sim": float(config.min_sim)})


def _max_sim(config: FilterConfig, _top: TopThreshold | None) -> Criterion | None:
    if config.max_sim is None:
        return None
    return Criterion("above_max_sim", f"{NOT_NAN} AND {SIM} <= $max_sim", {"max_sim": float(config.max_sim)})


def _top_fraction(config: FilterConfig, top: TopThreshold | None) -> Criterion | None:
    """Rows ranking at or above the threshold row (similarity desc, then key asc)."""
    if config.top_fraction is None:
        return None
    if top is None:  # an empty run: nothing to keep
        return Criterion("outside_top_fraction", "FALSE")
    if top.similarity is None:  # fewer comparable rows than asked for: all of them are in
        return Criterion("outside_top_fraction", NOT_NAN)
    sql = f"{NOT_NAN} AND ({SIM} > $top_sim OR ({SIM} = $top_sim AND key <= $top_key))"
    return Criterion("outside_top_fraction", sql, {"top_sim": top.similarity, "top_key": top.key})


def _where(config: FilterConfig, _top: TopThreshold | None) -> Criterion | None:
    """The user's predicate; NULL counts as false (a pair lacking the column is dropped)."""
    return None if config.where is None else Criterion("where", config.where)


def _dedup(config: FilterConfig, _top: TopThreshold | None) -> Criterion | None:
    """Rows `curate dedup` did not mark as a dropped near-duplicate (RUN_DIR/dedup/dedup.parquet)."""
    if not config.dedup:
        return None
    from curate.index.store import dedup_table

    table = sql_literal(str(dedup_table(config.run_dir)))
    return Criterion("duplicate", f"key NOT IN (SELECT key FROM read_parquet({table}) WHERE NOT kept)")


# Checked in this order (DROP_REASONS's); a dropped row counts under the first it fails.
CRITERIA: tuple[Callable[[FilterConfig, TopThreshold | None], Criterion | None], ...] = (
    _min_sim, _max_sim, _top_fraction, _where, _dedup,
)


def top_count(fraction: float, total: int) -> int:
    """How many rows the best `fraction` of `total` is: rounded up, so a tiny fraction keeps one
    row; 0.3 of 10 is 3, not 4 (the product is rounded before the ceiling)."""
    return min(total, math.ceil(round(fraction * total, 9))) if total else 0


def top_threshold(db: ScoresDatabase, fraction: float) -> TopThreshold | None:
    """The n-th best row by similarity (ties broken by key), n = top_count(fraction, rows);
    None for a run without rows."""
    ((total,),) = db.rows("SELECT count(*) FROM scores", what="counting scores")
    n = top_count(fraction, total)
    if n == 0:
        return None
    found = db.rows(
        f"SELECT similarity, key FROM scores WHERE {NOT_NAN} ORDER BY similarity DESC, key ASC "
        "LIMIT 1 OFFSET $offset", {"offset": n - 1}, what="finding the --top-fraction threshold",
    )
    if not found:
        return TopThreshold(rows=n, similarity=None, key=None)
    return TopThreshold(rows=n, similarity=float(found[0][0]), key=str(found[0][1]))


def outcomes_by_file(db: ScoresDatabase, selection: Selection) -> dict[str, Counter]:
    """Per scores file: how many rows were kept and how many each criterion dropped."""
    found = db.rows(
        f"SELECT {FILE_COLUMN}, {selection.outcome_sql()} AS outcome, count(*) FROM scores GROUP BY ALL",
        selection.params, what=selection.doing,
    )
    counts: dict[str, Counter] = {f: Counter() for f in db.files}
    for file, outcome, n in found:
        counts[file][outcome] += n
    return counts


def kept_keys(db: ScoresDatabase, selection: Selection, file: str) -> dict[str, float]:
    """The kept keys of one scores file, with their similarity."""
    found = db.rows(
        f"SELECT key, similarity FROM scores WHERE {FILE_COLUMN} = $file AND {selection.keep_sql()}",
        {**selection.params, "file": file}, what=f"{selection.doing} to {file}",
    )
    return {str(key): float(sim) for key, sim in found}
