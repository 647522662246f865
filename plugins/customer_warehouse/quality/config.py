"""The gate's configuration: which checks run on which table, and how severe each one is.

Checks are data (``expectations/checks/raw.yml`` and ``marts.yml``) so that the mart suites can
follow the dbt models as they change without touching code; severity is data too
(``expectations/severity.yml``) so that an analyst can turn a blocking check into a warning
with a reviewed one-line change. This module turns those files into :class:`Check` objects with
stable ids ``<schema>.<table>.<check>``; :mod:`.expectations` turns them into GX expectations.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..paths import expectations_dir

BLOCK, WARN = "block", "warn"
CHECK_TYPES = {"columns", "not_null", "unique", "min", "max", "between", "sum", "in_set", "row_count", "sql"}
LEDGER_TABLE = ("raw_meta", "load_batches")
# batches a passing gate has checked (see gate.py: the nightly checks only rows of other batches)
ACCEPTED_TABLE = "ops.quality_batches"
HISTORY_CHECK = "key_unique_history"


@dataclass(frozen=True)
class Check:
    """One check on one table; ``kind`` picks the GX expectation, ``params`` configure it."""

    schema: str
    table: str
    name: str
    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    @property
    def check_id(self) -> str:
        return f"{self.schema}.{self.table}.{self.name}"

    @property
    def columns(self) -> list[str]:
        """Columns the check needs (a missing one is reported instead of crashing GX)."""
        if self.kind == "columns":
            return []
        if "column_list" in self.params:
            return list(self.params["column_list"])
        return [self.params["column"]] if "column" in self.params else []


@dataclass(frozen=True)
class TableSpec:
    schema: str
    table: str
    required: bool
    checks: tuple[Check, ...]
    # raw data tables: the nightly gate checks only their rows not yet accepted by a passing gate
    scoped: bool = False
    key: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()  # the ledger's `source` names of the batches landing here

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.table}"


@dataclass
class Severity:
    """First matching rule wins; anything unmatched gets the default."""

    default: str = BLOCK
    rules: list[tuple[str, str]] = field(default_factory=list)

    def of(self, check_id: str) -> str:
        for pattern, level in self.rules:
            if fnmatch.fnmatchcase(check_id, pattern):
                return level
        return self.default

    @classmethod
    def load(cls, path: Path) -> Severity:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        default = _level(data.get("default", BLOCK), "default")
        rules = [(r["match"], _level(r["severity"], r["match"])) for r in data.get("rules") or []]
        return cls(default, rules)


def _level(value: str, where: str) -> str:
    if value not in (BLOCK, WARN):
        raise ValueError(f"severity.yml: {where}: severity must be 'block' or 'warn', not {value!r}")
    return value


def load_severity(root: Path | None = None) -> Severity:
    return Severity.load((root or expectations_dir()) / "severity.yml")


# -- raw layer ------------------------------------------------------------------------------------
def raw_specs(root: Path | None = None) -> tuple[list[TableSpec], list[Check]]:
    """Raw table specs, plus the freshness checks that run on the ledger table."""
    data = _read(root, "raw.yml")
    ledger = data.get("ledger") or {}
    exact = [str(m) for m in ledger.get("exact_modes") or []]
    hours = float(ledger.get("freshness_hours", 36))
    specs, freshness = [], []
    for schema, sconf in (data.get("schemas") or {}).items():
        sources = sconf.get("source") or schema.removeprefix("raw_")
        sources = [sources] if isinstance(sources, str) else list(sources)
        for table, tconf in (sconf.get("tables") or {}).items():
            tconf = tconf or {}
            checks = _table_checks(schema, table, tconf, {})
            key = tuple(tconf.get("key") or ())
            if key:
                checks.append(_history_unique_check(schema, table, key))
            if tconf.get("ledger", True):
                checks += _ledger_checks(schema, table, exact)
                freshness.append(_freshness_check(schema, table, sources, hours))
            specs.append(TableSpec(schema, table, bool(tconf.get("required", False)), tuple(checks),
                                   scoped=True, key=key, sources=tuple(sources)))
    return specs, freshness


def _ledger_checks(schema: str, table: str, exact_modes: list[str]) -> list[Check]:
    modes = ", ".join(_sql_literal(m) for m in exact_modes) or "null"
    known = Check(schema, table, "ledger_batches_known", "sql", {"query": (
        "select t._batch_id::text as batch_id, count(*) as observed, 'a loaded batch in raw_meta.load_batches' "
        "as expected from {batch} as t left join raw_meta.load_batches as b on b.batch_id = t._batch_id "
        "and b.status = 'loaded' where b.batch_id is null group by t._batch_id")},
        "every row belongs to a batch the ledger records as loaded")
    balance = Check(schema, table, "ledger_rows_match", "sql", {"query": (
        "select t._batch_id::text as batch_id, b.mode, count(*) as observed, b.rows_loaded as expected "
        "from {batch} as t join raw_meta.load_batches as b on b.batch_id = t._batch_id "
        "group by t._batch_id, b.mode, b.rows_loaded "
        f"having count(*) > b.rows_loaded or (b.mode in ({modes}) and count(*) <> b.rows_loaded)")},
        f"rows per batch never exceed the ledger's rows_loaded, and equal it for {exact_modes or 'no'} batches")
    return [known, balance]


def _history_unique_check(schema: str, table: str, key: tuple[str, ...]) -> Check:
    """The new rows' keys against the rows already accepted (``key_unique`` covers the new rows
    among themselves). Only the nightly runs it: over the whole table ``key_unique`` says it all,
    and a table whose key is enforced by a unique index needs neither (the gate says so)."""
    cols = ", ".join(f"s.{_ident(c)}" for c in key)
    on = " and ".join(f"h.{_ident(c)} = s.{_ident(c)}" for c in key)
    query = (
        f"select {cols}, s._batch_id::text as batch_id, h._batch_id::text as accepted_batch_id, "
        f"'key already in an accepted batch' as observed, 'a key not yet in the table' as expected "
        f"from {{batch}} as s join {_ident(schema)}.{_ident(table)} as h on {on} "
        f"where exists (select 1 from {ACCEPTED_TABLE} as a where a.batch_id = h._batch_id)"
    )
    return Check(schema, table, HISTORY_CHECK, "sql", {"query": query, "column_list": list(key)},
                 f"({', '.join(key)}) of tonight's rows is not already taken by rows of earlier, accepted batches")


def _freshness_check(schema: str, table: str, sources: list[str], hours: float) -> Check:
    names = ", ".join(_sql_literal(s) for s in sources)
    query = (
        f"select {_sql_literal(schema + '.' + table)} as raw_table, max(finished_at)::text as observed, "
        f"'loaded within {hours:g} h' as expected from {{batch}} "
        # amoCRM names per-type batches `notes:leads`, `custom_fields:contacts`…
        f"where source in ({names}) and (entity = {_sql_literal(table)} or entity like {_sql_literal(table + ':%')}) "
        f"and status = 'loaded' "
        f"having max(finished_at) is null or max(finished_at) < now() - interval '{hours:g} hours'"
    )
    return Check(*LEDGER_TABLE, f"freshness__{schema}__{table}", "sql", {"query": query},
                 f"the last loaded batch of {schema}.{table} is at most {hours:g} hours old")


# -- marts ----------------------------------------------------------------------------------------
def mart_specs(schema: str = "marts_build", root: Path | None = None) -> list[TableSpec]:
    data = _read(root, "marts.yml")
    variables = {k: str(v).strip() for k, v in (data.get("vars") or {}).items()}
    return [
        TableSpec(schema, table, bool((tconf or {}).get("required", False)),
                  tuple(_table_checks(schema, table, tconf or {}, variables)), key=tuple((tconf or {}).get("key") or ()))
        for table, tconf in (data.get("tables") or {}).items()
    ]


# -- shared ---------------------------------------------------------------------------------------
def _table_checks(schema: str, table: str, conf: dict[str, Any], variables: dict[str, str]) -> list[Check]:
    checks: list[Check] = []
    if conf.get("columns"):
        checks.append(Check(schema, table, "columns_present", "columns", {"columns": list(conf["columns"])},
                            "the contracted columns exist"))
    key = list(conf.get("key") or [])
    for col in [*key, *(c for c in conf.get("not_null") or [] if c not in key)]:
        checks.append(Check(schema, table, f"{col}_not_null", "not_null", {"column": col}, f"{col} is filled"))
    if key:
        checks.append(Check(schema, table, "key_unique", "unique", {"column_list": key},
                            f"({', '.join(key)}) identifies a row"))
    for raw in conf.get("checks") or []:
        checks.append(_custom_check(schema, table, raw, variables))
    names = [c.name for c in checks]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise ValueError(f"{schema}.{table}: duplicate check names {sorted(dupes)}")
    return checks


def _custom_check(schema: str, table: str, raw: dict[str, Any], variables: dict[str, str]) -> Check:
    raw = dict(raw)
    name, kind = raw.pop("name"), raw.pop("type")
    if kind not in CHECK_TYPES:
        raise ValueError(f"{schema}.{table}.{name}: unknown check type {kind!r} (one of {sorted(CHECK_TYPES)})")
    description = raw.pop("description", "")
    if kind == "sql":
        query = raw["query"]
        if "reference" in raw:
            ref = raw.pop("reference")
            if ref not in variables:
                raise ValueError(f"{schema}.{table}.{name}: reference {ref!r} is not defined under vars")
            raw["reference_query"] = variables[ref].replace("{schema}", schema)
            query = query.replace("{reference}", raw["reference_query"])
        # {schema} is ours; {batch} is left for GX to fill with the table
        raw["query"] = query.replace("{schema}", schema)
    return Check(schema, table, name, kind, raw, description)


def _read(root: Path | None, name: str) -> dict[str, Any]:
    path = (root or expectations_dir()) / "checks" / name
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
