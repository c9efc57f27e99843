"""A user's row predicate (`filter --where`): one SQL expression over a table's columns, nothing else.

The text comes from outside (a shell, a config file, a web form), so it is never pasted into
a query. DuckDB's parser reads it as one expression (`duckdb.SQLExpression`): a text that
closes a parenthesis early or holds a second statement does not parse. The parsed tree is
then walked to refuse what a test of one row has no use for and what could reach past the
row (subqueries read other tables, parameters and `*` are not values of the row); binding
it to the table refuses unknown columns, aggregates and window functions. What the caller
gets is the parsed expression object, composed into queries with DuckDB's relational API,
so a trailing `--` can swallow nothing of the query around it. Scalar functions that could
touch a file meet a connection whose external access is off (`run_database.open_connection`).

`bind_predicate` is the one entry point: a relation in, the same relation with a boolean
column out (NULL counts as false, so a row lacking a meta column is not kept).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator

from curate.errors import CurateError
from curate.io.run_database import one_line

if TYPE_CHECKING:
    import duckdb

PREDICATE_COLUMN = "__predicate"
# Node classes of DuckDB's parse tree that have no place in a test of one row's values.
REFUSED = {
    "SUBQUERY": "a subquery (it would read beyond the row)",
    "PARAMETER": "a $parameter",
    "STAR": "a * or COLUMNS(...) expansion",
    "WINDOW": "a window function",
}


@dataclass(frozen=True)
class Predicate:
    """The text as given (for messages and manifests) and DuckDB's parse of it."""

    text: str
    expression: Any  # duckdb.Expression


def parse_predicate(text: str, con: "duckdb.DuckDBPyConnection", *, option: str = "--where") -> Predicate:
    """`text` as one expression, or a `CurateError` naming the option and what is wrong."""
    import duckdb

    try:
        expression = duckdb.SQLExpression(text)
        tree = _syntax_tree(text, con)
    except duckdb.Error as exc:
        raise CurateError(f"{option} {text!r} is not one SQL expression: {one_line(str(exc))}") from None
    problem = _refused_node(tree)
    if problem is not None:
        raise CurateError(f"{option} {text!r} holds {problem}; give one expression over the columns of a row.")
    return Predicate(text=text, expression=expression)


def bind_predicate(
    predicate: Predicate, relation: "duckdb.DuckDBPyRelation", *, option: str = "--where",
    column: str = PREDICATE_COLUMN,
) -> "duckdb.DuckDBPyRelation":
    """`relation` plus `column` = the predicate, NULL as false. Binding happens here, before any
    row is read: an unknown column, an aggregate or a window function is refused in one line."""
    import duckdb

    try:
        relation.filter(predicate.expression)  # a WHERE: DuckDB's binder refuses aggregates and windows
        value = duckdb.CoalesceOperator(predicate.expression, duckdb.ConstantExpression(False))
        return relation.select(duckdb.StarExpression(), value.alias(column))
    except duckdb.Error as exc:
        raise CurateError(f"{option} {predicate.text!r}: {one_line(str(exc))}") from None


def _syntax_tree(text: str, con: "duckdb.DuckDBPyConnection") -> dict:
    """DuckDB's parse tree of `SELECT <text>` as JSON (parsed only, never run)."""
    ((serialized,),) = con.execute("SELECT json_serialize_sql($query)", {"query": f"SELECT {text}"}).fetchall()
    return json.loads(serialized)


def _refused_node(tree: dict) -> str | None:
    """What in the tree makes it more than one row expression (None when nothing does)."""
    statements = tree.get("statements") or []
    if tree.get("error") or len(statements) != 1:
        return "more than one expression"
    node = statements[0]["node"]
    if node.get("type") != "SELECT_NODE" or len(node.get("select_list", [])) != 1:
        return "more than one expression"
    for item in _nodes(node["select_list"][0]):
        if item.get("class") in REFUSED:
            return REFUSED[item["class"]]
    return None


def _nodes(value: Any) -> Iterator[dict]:
    """Every JSON object in the tree, depth first."""
    if isinstance(value, dict):
        yield value
        for child in value.values():
            yield from _nodes(child)
    elif isinstance(value, list):
        for child in value:
            yield from _nodes(child)

