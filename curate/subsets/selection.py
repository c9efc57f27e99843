"""Which scored pairs a subset keeps, decided by DuckDB over `RUN_DIR/scores/*.parquet`.

The scores files are one view, `scores` (columns matched by name, so shards whose meta
columns differ still stack: the same schema `curate sql` shows), and each file is a view of
its own on that schema when its rows are counted and fetched. Every criterion is a boolean
SQL expression of ours; a row is kept when all hold. The user's `--where` is not pasted into
them: it is parsed as one expression and bound to the views as a computed column
(`curate.io.predicate`), which the `where` criterion names. `--top-fraction` is turned into
a global threshold first (the similarity and key of the last row kept, ties broken by key),
so afterwards it is a per-row predicate like the others and kept keys can be fetched one
scores file at a time: memory holds one shard's keys, never the run's. The connection
reads the run's files and nothing else (`curate.io.run_database.open_connection`).

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
from curate.io.predicate import PREDICATE_COLUMN, Predicate, bind_predicate, parse_predicate
from curate.io.run_database import lock, one_line, open_connection, table_dataset, union_schema
from curate.schemas.config.flow import FilterConfig
from curate.schemas.manifest import KEPT
from curate.schemas.tables import FALSE_MATCH_RATE
from curate.subsets.recipes import RECIPE_COLUMN, Recipe

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

SCORES_VIEW = "scores"
DEDUP_VIEW = "__dedup"
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
    """An in-memory DuckDB connection with a `scores` view over the given scores files, one view
    per file (`shard_view`), the parsed `--where` as a column of each, and the dedup table."""

    def __init__(self, files: list[Path], *, where: str | None = None, dedup: Path | None = None,
                 recipe: Recipe | None = None) -> None:
        self.files = [str(f) for f in files]
        self.con: duckdb.DuckDBPyConnection = open_connection()
        self.schema = self._guard(lambda: union_schema(files), what="reading the scores files")
        self.predicate: Predicate | None = parse_predicate(where, self.con) if where is not None else None
        self.recipe_predicate_option = f"--recipe {recipe.name}" if recipe else ""
        self.recipe_predicate = parse_predicate(recipe.where, self.con, option=self.recipe_predicate_option) if recipe else None
        self._views: dict[str, str] = {}
        self._add_view(SCORES_VIEW, self.files)
        if dedup is not None:
            self.con.register(DEDUP_VIEW, table_dataset([dedup]))
        lock(self.con)

    def shard_view(self, file: str) -> str:
        """The name of a view over one scores file's rows (on the run's schema), made on first use."""
        if file not in self._views:
            self._add_view(f"scores_file_{len(self._views)}", [file])
        return self._views[file]

    def _add_view(self, name: str, files: list[str]) -> None:
        self.con.register(f"{name}_rows", table_dataset([Path(f) for f in files], schema=self.schema))
        rows = self.con.table(f"{name}_rows")
        if self.predicate is not None:
            rows = bind_predicate(self.predicate, rows)
        if self.recipe_predicate is not None:  # the same parse and bind as --where: never pasted
            rows = bind_predicate(self.recipe_predicate, rows, option=self.recipe_predicate_option, column=RECIPE_COLUMN)
        rows.create_view(name)
        if len(files) == 1:
            self._views[files[0]] = name

    def rows(self, sql: str, params: dict[str, Any] | None = None, *, what: str) -> list[tuple]:
        """Run `sql`; any DuckDB failure becomes one line that says what was being done."""
        return self._guard(lambda: self.con.execute(sql, params or {}).fetchall(), what=what)

    def table(self, sql: str, params: dict[str, Any] | None = None, *, what: str) -> "pa.Table":
        """`rows`, as Arrow columns (no Python object per row)."""
        return self._guard(lambda: self.con.sql(sql, params=params or None).to_arrow_table(), what=what)

    @staticmethod
    def _guard(work: Callable[[], Any], *, what: str) -> Any:
        import duckdb
        import pyarrow as pa

        try:
            return work()
        except (duckdb.Error, pa.ArrowException, OSError) as exc:
            raise CurateError(f"{what}: {one_line(str(exc))}") from None

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> "ScoresDatabase":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def build_selection(config: FilterConfig, db: ScoresDatabase) -> Selection:
    """The criteria `config` asks for (the --where was parsed and bound when `db` was opened)."""
    threshold = top_threshold(db, config.top_fraction) if config.top_fraction is not None else None
    criteria = tuple(c for make in CRITERIA for c in [make(config, threshold)] if c is not None)
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


def _max_false_match(config: FilterConfig, _top: TopThreshold | None) -> Criterion | None:
    """Pairs no more often matched by the run's mismatched pairs than asked (NaN, no null: dropped)."""
    if config.max_false_match is None:
        return None
    return Criterion("above_max_false_match", f"NOT isnan(coalesce({FALSE_MATCH_RATE}, random())) AND "
                     f"{FALSE_MATCH_RATE} <= $max_false_match", {"max_false_match": float(config.max_false_match)})


def _recipe(config: FilterConfig, _top: TopThreshold | None) -> Criterion | None:
    """The recipe's predicate, as the column `bind_predicate` computed (NULL already false)."""
    return None if config.recipe is None else Criterion("recipe", RECIPE_COLUMN)


def _where(config: FilterConfig, _top: TopThreshold | None) -> Criterion | None:
    """The user's predicate, as the column `bind_predicate` computed (NULL already false)."""
    return None if config.where is None else Criterion("where", PREDICATE_COLUMN)


def _dedup(config: FilterConfig, _top: TopThreshold | None) -> Criterion | None:
    """Rows `curate dedup` did not mark as a dropped near-duplicate (RUN_DIR/dedup/dedup.parquet)."""
    if not config.dedup:
        return None
    return Criterion("duplicate", f"key NOT IN (SELECT key FROM {DEDUP_VIEW} WHERE NOT kept)")


# Checked in this order (DROP_REASONS's); a dropped row counts under the first it fails.
CRITERIA: tuple[Callable[[FilterConfig, TopThreshold | None], Criterion | None], ...] = (
    _min_sim, _max_sim, _max_false_match, _top_fraction, _recipe, _where, _dedup,
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
    counts: dict[str, Counter] = {}
    for file in db.files:
        found = db.rows(
            f"SELECT {selection.outcome_sql()} AS outcome, count(*) FROM {db.shard_view(file)} GROUP BY ALL",
            selection.params, what=f"{selection.doing} to {file}",
        )
        counts[file] = Counter({outcome: n for outcome, n in found})
    return counts


def kept_keys(db: ScoresDatabase, selection: Selection, file: str) -> dict[str, float]:
    """The kept keys of one scores file, with their similarity."""
    found = kept_table(db, selection, file)
    return dict(zip(found.column("key").to_pylist(), found.column("similarity").to_pylist()))


def kept_table(db: ScoresDatabase, selection: Selection, file: str) -> "pa.Table":
    """The kept keys of one scores file with their similarity, as Arrow columns `key` (string)
    and `similarity` (float32)."""
    import pyarrow as pa

    found = db.table(
        f"SELECT key, similarity FROM {db.shard_view(file)} WHERE {selection.keep_sql()}",
        selection.params, what=f"{selection.doing} to {file}",
    )
    return pa.table([found.column(0).cast(pa.string()), found.column(1).cast(pa.float32())],
                    names=["key", "similarity"])
