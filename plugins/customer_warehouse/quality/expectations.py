"""Checks → Great Expectations 1.x expectations.

Aggregate expectations are preferred (a min() is one scan and one number, not a list of rows);
the row-level ones that remain (not null, unique, between, in set) are pushed down by GX's SQL
engine as ``count(*) where not …`` queries. Query checks become
:func:`unexpected_rows_count_class` expectations (GX's ``UnexpectedRowsExpectation``, counting
only): the query returns the offending rows, and passes when it returns none.
Every expectation carries its check id in ``meta`` so results map back to the configuration.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from .config import Check


def to_expectation(check: Check):
    import great_expectations.expectations as gxe

    p = check.params
    meta: dict[str, Any] = {"check_id": check.check_id}
    common = {"meta": meta, "description": check.description or None}
    builders = {
        "columns": lambda: gxe.ExpectTableColumnsToMatchSet(column_set=p["columns"], exact_match=False, **common),
        "not_null": lambda: gxe.ExpectColumnValuesToNotBeNull(column=p["column"], **common),
        "unique": lambda: _unique(gxe, p["column_list"], common),
        "min": lambda: gxe.ExpectColumnMinToBeBetween(column=p["column"], min_value=p.get("min"),
                                                      max_value=p.get("max"), **common),
        "max": lambda: gxe.ExpectColumnMaxToBeBetween(column=p["column"], min_value=p.get("min"),
                                                      max_value=p.get("max"), **common),
        "between": lambda: gxe.ExpectColumnValuesToBeBetween(column=p["column"], min_value=p.get("min"),
                                                             max_value=p.get("max"), **common),
        "sum": lambda: gxe.ExpectColumnSumToBeBetween(column=p["column"], min_value=p.get("min"),
                                                      max_value=p.get("max"), **common),
        "in_set": lambda: gxe.ExpectColumnValuesToBeInSet(column=p["column"], value_set=p["values"], **common),
        "row_count": lambda: gxe.ExpectTableRowCountToBeBetween(min_value=p.get("min"), max_value=p.get("max"),
                                                               **common),
        "sql": lambda: unexpected_rows_count_class()(unexpected_rows_query=p["query"], **common),
    }
    return builders[check.kind]()


@cache
def unexpected_rows_count_class():
    """GX's ``UnexpectedRowsExpectation`` that only counts the offending rows.

    The stock one depends on two metrics, the row count *and* the rows themselves (up to 200
    fetched), so every query check ran its query twice; with the BASIC result format it then
    drops the rows. The gate samples a failed query check's rows itself (``gate._sql_sample``,
    five rows, for the observed-vs-expected message), so the count is all it needs from GX: one
    query per check. Success and result are the stock BASIC ones (``observed_value`` = count);
    renderers are inherited, so Data Docs show it like the stock expectation. Defined once
    (GX registers expectation classes by name when they are created).
    """
    import great_expectations.expectations as gxe

    class UnexpectedRowsCountExpectation(gxe.UnexpectedRowsExpectation):
        metric_dependencies = ("unexpected_rows_query.row_count",)

        def _validate(self, metrics: dict, runtime_configuration: dict | None = None, execution_engine=None):
            count = metrics["unexpected_rows_query.row_count"]
            return {"success": count == 0, "result": {"observed_value": count}}

    return UnexpectedRowsCountExpectation


def _unique(gxe, columns: list[str], common: dict[str, Any]):
    if len(columns) == 1:
        return gxe.ExpectColumnValuesToBeUnique(column=columns[0], **common)
    # all rows count (not only those with every key filled): a half-null key is a duplicate risk too
    return gxe.ExpectCompoundColumnsToBeUnique(column_list=columns, ignore_row_if="never", **common)


def expected_text(check: Check) -> str:
    """What the check expects, in words, for failure messages and the dashboard."""
    p = check.params
    match check.kind:
        case "columns":
            return f"columns {', '.join(p['columns'])} present"
        case "not_null":
            return f"{p['column']} never null"
        case "unique":
            return f"({', '.join(p['column_list'])}) unique"
        case "min" | "max" | "sum" | "between" | "row_count":
            what = {"min": f"min({p.get('column')})", "max": f"max({p.get('column')})",
                    "sum": f"sum({p.get('column')})", "between": f"every {p.get('column')}",
                    "row_count": "row count"}[check.kind]
            return f"{what} within [{_bound(p.get('min'), '−∞')}, {_bound(p.get('max'), '+∞')}]"
        case "in_set":
            return f"{p['column']} in {{{', '.join(map(str, p['values']))}}}"
        case "sql":
            return check.description or "query returns no rows"
    return check.kind


def observed_text(check: Check, result: dict[str, Any]) -> str:
    """What GX saw, in words."""
    r = result or {}
    if check.kind == "columns":
        missing = ((r.get("details") or {}).get("mismatched") or {}).get("missing") or []
        return f"missing columns: {', '.join(missing)}" if missing else f"columns {r.get('observed_value')}"
    if "unexpected_count" in r:
        sample = r.get("partial_unexpected_counts") or r.get("partial_unexpected_list") or []
        return f"{r['unexpected_count']} of {r.get('element_count')} rows violate it; sample {_short(sample)}"
    if check.kind == "sql":
        return f"{r.get('observed_value')} offending row(s)"
    return repr(r.get("observed_value"))


def _bound(v: Any, unbounded: str) -> str:
    return unbounded if v is None else str(v)


def _short(value: Any, limit: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
