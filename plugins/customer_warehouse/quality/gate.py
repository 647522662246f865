"""The quality gate: validate raw batches and the freshly built marts with Great Expectations.

``run_gate(dsn)`` reads the checks (``expectations/checks/*.yml``) and their severities
(``expectations/severity.yml``), looks at which tables exist, and runs one GX validation per
table: the table's checks are one expectation suite, validated on one batch. GX runs in an in-memory context with the Data Docs site of the
committed ``expectations/great_expectations.yml``, so a run writes nothing but Data Docs and never
rewrites committed files. The connection string reaches GX only through config substitution
(``${CW_GX_WAREHOUSE_URI}``, passed as the context's runtime environment), so it is written to no
file.

Raw tables are checked **per batch** by default: the ledger (``raw_meta.load_batches``) names the
batches loaded that no passing gate has accepted yet (``ops.quality_batches``) — tonight's, plus
any a blocked night left — and only the rows of those batches are copied once into an unlogged
``quality_scope`` table, which GX validates. So the nightly's raw checks scale with what
was loaded, not with the history. A key enforced by a unique index (the upsert loaders' primary
keys) is reported as such instead of being re-checked; other keys are checked within the new rows
(``key_unique``) and against the accepted rows (``key_unique_history``). ``full=True`` (``cw gate
--full``, the weekly audit) checks whole raw tables, so drift in old data is caught. Marts are
always checked whole. Every raw result says in ``details.scope`` which batches and rows it covered.

Tables that do not exist are reported rather than crashing the run: a missing *required* table is
a failure, a missing optional one (a source that is not configured, a mart not built yet) is
skipped with a message. Results go to ``ops.quality_results`` and Data Docs are rebuilt.
The gate itself never raises on bad data; :func:`customer_warehouse.publish.publisher.publish`
decides, from the severities, whether the build ships.
"""

from __future__ import annotations

import datetime as dt
import importlib
import importlib.util
import logging
import sys
import threading
import time
import types
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psycopg
import yaml

from ..paths import expectations_dir
from .config import (
    ACCEPTED_TABLE,
    HISTORY_CHECK,
    LEDGER_TABLE,
    Check,
    Severity,
    TableSpec,
    load_severity,
    mart_specs,
    raw_specs,
)
from .expectations import expected_text, observed_text, to_expectation
from .results import ERROR, FAILED, PASSED, SKIPPED, CheckResult, GateResult, accept_batches, record

log = logging.getLogger(__name__)

URI_VARIABLE = "CW_GX_WAREHOUSE_URI"
DATASOURCE = "warehouse"
DEFAULT_SCHEMAS = ("raw", "marts_build")
SCOPE_SCHEMA = "quality_scope"
BATCHES, FULL = "batches", "full"
# one gate at a time per warehouse: the scope tables and the accepted-batch bookkeeping are shared
GATE_LOCK = "customer_warehouse.quality_gate"


@dataclass
class Scope:
    """What a raw table's checks read: ``target`` (the table itself, or its scope copy) and which
    batches and rows that is — stored with every result of the table."""

    mode: str
    target: tuple[str, str]
    rows: int
    batches: dict[str, int]
    reason: str = ""

    def details(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mode": self.mode, "rows": self.rows, "batches": len(self.batches)}
        if self.mode == BATCHES:
            out["batch_ids"] = sorted(self.batches)
        if self.reason:
            out["reason"] = self.reason
        return out


def run_gate(dsn: Any, schemas: Sequence[str] = DEFAULT_SCHEMAS, *, run_date: dt.date | str | None = None,
             config_dir: Path | None = None, docs_dir: Path | None = None, record_results: bool = True,
             full: bool = False) -> GateResult:
    """Validate ``schemas`` ("raw" = every configured raw schema, "marts_build", "marts", or one
    raw schema by name) and return pass/fail per check with its severity.

    Raw tables: only rows of batches no passing gate has accepted yet, unless ``full`` (or no batch
    was ever accepted: the first run checks everything). A passing run accepts the batches it listed.
    """
    t0 = time.monotonic()
    # importing GX takes seconds of CPU; let it overlap the catalog and scope queries, which wait on
    # the server (the import lock makes the later `import great_expectations` wait for it)
    threading.Thread(target=_import_gx, name="gx-import", daemon=True).start()
    uri = _uri(dsn)
    root = Path(config_dir) if config_dir else expectations_dir()
    severity = load_severity(root)
    specs = select_specs(schemas, root)
    result = GateResult.new(run_date)
    result.schemas = list(schemas)
    with psycopg.connect(uri, autocommit=True, application_name="customer_warehouse.quality") as conn:
        conn.execute("select pg_advisory_lock(hashtext(%s))", (GATE_LOCK,))
        scopes: dict[str, Scope] = {}
        try:
            present = _existing_columns(conn, {(s.schema, s.table) for s in specs})
            runnable = _plan(specs, present, severity, result)
            mode = FULL if full or not _anything_accepted(conn) else BATCHES
            reason = "" if mode == BATCHES else ("full audit" if full else "first run: no batch accepted yet")
            t1 = time.monotonic()
            candidates = _candidate_batches(conn, [spec for spec, _ in runnable if spec.scoped])
            scopes = _scope_raw_tables(conn, runnable, candidates, mode, reason)
            result.timings["scope_seconds"] = round(time.monotonic() - t1, 2)
            runnable = _resolve_without_gx(conn, runnable, scopes, severity, result)
            if runnable:
                try:
                    outcomes, result.docs_index = _validate_with_gx(uri, runnable, scopes, root, docs_dir,
                                                                    result.run_id, result.timings)
                except Exception as err:  # a GX crash must block (and be recorded), not vanish
                    log.exception("GX validation failed")
                    outcomes = {c.check_id: {"success": False, "result": {}, "error": f"GX failed: "
                                             f"{type(err).__name__}: {_redact_uri(str(err), uri)}"}
                                for _, checks in runnable for c in checks}
                _collect(runnable, outcomes, scopes, severity, result, conn)
            _attach_scopes(result, scopes)
            result.seconds = round(time.monotonic() - t0, 2)
            if record_results:
                record(conn, result)
                if result.passed:
                    # every batch of the checked sources the ledger listed at the start — those
                    # with no rows left (superseded, empty) too, or they would be listed forever
                    accepted = {b: mode for ids in candidates.values() for b in ids}
                    accept_batches(conn, result, accepted)
        finally:
            _drop_scope_tables(conn, scopes)
            if not conn.closed:
                try:
                    conn.execute("select pg_advisory_unlock(hashtext(%s))", (GATE_LOCK,))
                except psycopg.Error as err:  # closing the session releases it anyway
                    log.warning("could not release the gate lock: %s", err)
    log.info("quality gate %s in %.1fs (%s)\n%s", result.run_id, result.seconds, result.timings, result.summary())
    if result.docs_index:
        print(f"Data Docs: {result.docs_index}")
    return result


def select_specs(schemas: Iterable[str], root: Path) -> list[TableSpec]:
    """The table specs the requested schemas cover (raw freshness runs on the ledger table)."""
    specs: list[TableSpec] = []
    for name in schemas:
        if name == "raw" or name.startswith("raw_"):
            raw, freshness = raw_specs(root)
            keep = [s for s in raw if name == "raw" or s.schema == name]
            specs += keep
            wanted = {f"freshness__{s.schema}__{s.table}" for s in keep}
            fresh = [c for c in freshness if c.name in wanted]
            if fresh:
                specs.append(TableSpec(*LEDGER_TABLE, False, tuple(fresh)))
        else:
            specs += mart_specs(name, root)
    return _merge_same_tables(specs)


def _merge_same_tables(specs: list[TableSpec]) -> list[TableSpec]:
    merged: dict[str, TableSpec] = {}
    for s in specs:
        if s.qualified in merged:
            old = merged[s.qualified]
            known = {c.check_id for c in old.checks}
            s = replace(s, required=old.required or s.required,
                        checks=old.checks + tuple(c for c in s.checks if c.check_id not in known))
        merged[s.qualified] = s
    return list(merged.values())


# -- planning: what can run ------------------------------------------------------------------------
def _existing_columns(conn, wanted: set[tuple[str, str]]) -> dict[tuple[str, str], set[str]]:
    rows = conn.execute(
        "select table_schema, table_name, column_name from information_schema.columns "
        "where (table_schema, table_name) in (select * from unnest(%s::text[], %s::text[]))",
        ([s for s, _ in wanted], [t for _, t in wanted]),
    ).fetchall()
    out: dict[tuple[str, str], set[str]] = {}
    for schema, table, column in rows:
        out.setdefault((schema, table), set()).add(column)
    return out


def _plan(specs: list[TableSpec], present: dict[tuple[str, str], set[str]], severity: Severity,
          result: GateResult) -> list[tuple[TableSpec, list[Check]]]:
    """Checks GX can run; missing tables and columns become results right away."""
    runnable = []
    raw_present = any(k[0].startswith("raw_") for k in present)
    for spec in specs:
        columns = present.get((spec.schema, spec.table))
        if columns is None:
            result.checks.append(_missing_table(spec, severity, raw_present))
            continue
        checks = []
        for check in _only_present_freshness(spec, present):
            missing = [c for c in check.columns if c not in columns]
            if missing:
                result.checks.append(_result(check, severity, ERROR, f"column(s) {', '.join(missing)} missing",
                                             expected_text(check)))
            else:
                checks.append(check)
        if checks:
            runnable.append((spec, checks))
    return runnable


def _only_present_freshness(spec: TableSpec, present: dict[tuple[str, str], set[str]]) -> list[Check]:
    """Freshness is asked only of raw tables that exist: an unconfigured source is not stale."""
    if (spec.schema, spec.table) != LEDGER_TABLE:
        return list(spec.checks)
    keep = []
    for check in spec.checks:
        _, schema, table = check.name.split("__", 2)
        if (schema, table) in present:
            keep.append(check)
    return keep


def _missing_table(spec: TableSpec, severity: Severity, raw_present: bool) -> CheckResult:
    check = Check(spec.schema, spec.table, "table_exists", "table_exists")
    ledger = (spec.schema, spec.table) == LEDGER_TABLE
    if spec.required or (ledger and raw_present):
        return _result(check, severity, FAILED, "table does not exist", "table exists")
    return _result(check, severity, SKIPPED, "table does not exist (optional: checks skipped)", "table exists")


def _result(check: Check, severity: Severity, status: str, observed: str, expected: str,
            details: dict[str, Any] | None = None) -> CheckResult:
    return CheckResult(check.check_id, check.schema, check.table, check.name, check.kind,
                       severity.of(check.check_id), status, observed, expected, details or {})


# -- raw scope: which rows the raw checks read ---------------------------------------------------
def _anything_accepted(conn) -> bool:
    if conn.execute("select to_regclass(%s)", (ACCEPTED_TABLE,)).fetchone()[0] is None:
        return False
    return conn.execute(f"select exists (select 1 from {ACCEPTED_TABLE})").fetchone()[0]  # noqa: S608


def _candidate_batches(conn, specs: list[TableSpec]) -> dict[str, list[str]]:
    """Per ledger source: its loaded batches no passing gate has accepted yet (tonight's)."""
    sources = sorted({src for spec in specs for src in spec.sources})
    if not sources:
        return {}
    accepted = conn.execute("select to_regclass(%s)", (ACCEPTED_TABLE,)).fetchone()[0] is not None
    query = ("select source, array_agg(batch_id::text order by batch_id) from raw_meta.load_batches as b "
             "where status = 'loaded' and source = any(%s)"
             + (f" and not exists (select 1 from {ACCEPTED_TABLE} as a where a.batch_id = b.batch_id)"
                if accepted else "") + " group by source")
    if conn.execute("select to_regclass('raw_meta.load_batches')").fetchone()[0] is None:
        return {}
    return {src: list(ids) for src, ids in conn.execute(query, (sources,)).fetchall()}  # noqa: S608


def _scope_raw_tables(conn, runnable: list[tuple[TableSpec, list[Check]]], candidates: dict[str, list[str]],
                      mode: str, reason: str) -> dict[str, Scope]:
    """Per raw table: in batch mode copy the rows of tonight's batches into an unlogged table (an
    index on ``_batch_id`` makes that a lookup; without one it is one sequential scan, and every
    check then reads only the copy), in full mode read the table itself. Either way count the rows
    per batch, for the results."""
    from psycopg import sql

    scopes: dict[str, Scope] = {}
    raw = [spec for spec, _ in runnable if spec.scoped]
    if raw and mode == BATCHES:
        conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(SCOPE_SCHEMA)))
    for spec in raw:
        base = sql.Identifier(spec.schema, spec.table)
        if mode == BATCHES:
            target = (SCOPE_SCHEMA, f"{spec.schema}__{spec.table}")
            ident = sql.Identifier(*target)
            batch_ids = sorted({b for src in spec.sources for b in candidates.get(src, [])})
            conn.execute(sql.SQL("drop table if exists {}").format(ident))
            # A batch's rows carry its transaction's now() as _loaded_at, which is also its ledger
            # finished_at: the lower bound lets the raw table's BRIN on _loaded_at skip the history.
            conn.execute(sql.SQL("create unlogged table {} as select t.* from {} as t "
                                 "where t._batch_id = any(%s::uuid[]) and t._loaded_at >= ("
                                 "select min(finished_at) from raw_meta.load_batches "
                                 "where batch_id = any(%s::uuid[]))").format(ident, base),
                         (batch_ids, batch_ids))
            conn.execute(sql.SQL("analyze {}").format(ident))
        else:
            target, ident = (spec.schema, spec.table), base
        counts = conn.execute(sql.SQL("select _batch_id::text, count(*) from {} group by 1").format(ident)).fetchall()
        batches = {b: n for b, n in counts}
        scopes[spec.qualified] = Scope(mode, target, sum(batches.values()), batches, reason)
    return scopes


def unique_indexes(conn, schema: str, table: str) -> list[tuple[str, list[str]]]:
    """Plain (non-partial, column-only) unique indexes of the table, with their columns: what the
    gate takes as proof of a key (and what tests check dbt built)."""
    rows = conn.execute(
        "select i.indexrelid::regclass::text, array_agg(a.attname::text order by k.ord) "
        "from pg_index i cross join lateral unnest(i.indkey) with ordinality as k(attnum, ord) "
        "join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum "
        "where i.indrelid = to_regclass(%s) and i.indisunique and i.indpred is null and i.indexprs is null "
        "group by i.indexrelid", (f'"{schema}"."{table}"',)).fetchall()
    return [(name, list(cols)) for name, cols in rows]


def _resolve_without_gx(conn, runnable: list[tuple[TableSpec, list[Check]]], scopes: dict[str, Scope],
                        severity: Severity, result: GateResult) -> list[tuple[TableSpec, list[Check]]]:
    """Checks that need no query: a key a unique index enforces (the upsert loaders' primary keys,
    the marts' key indexes), nothing new to check, the history check of a full audit
    (``key_unique`` over the whole table covers it)."""
    keep = []
    for spec, checks in runnable:
        scope = scopes.get(spec.qualified)
        enforced = next(((n, c) for n, c in unique_indexes(conn, spec.schema, spec.table) if set(c) <= set(spec.key)),
                        None) if spec.key else None
        left = []
        for check in checks:
            if enforced and (check.kind == "unique" or check.name == HISTORY_CHECK):
                result.checks.append(_result(check, severity, PASSED,
                                             f"enforced by unique index {enforced[0]} ({', '.join(enforced[1])})",
                                             expected_text(check)))
                continue
            if scope is not None and check.name == HISTORY_CHECK and scope.mode == FULL:
                result.checks.append(_result(check, severity, SKIPPED,
                                             "whole table checked: key_unique covers the history",
                                             expected_text(check)))
                continue
            if scope is not None and scope.rows == 0:
                result.checks.append(_result(check, severity, SKIPPED,
                                             "no rows to check: every batch in the table was accepted before",
                                             expected_text(check)))
                continue
            left.append(check)
        if left:
            keep.append((spec, left))
    return keep


def _attach_scopes(result: GateResult, scopes: dict[str, Scope]) -> None:
    for check in result.checks:
        scope = scopes.get(f"{check.schema}.{check.table}")
        if scope is not None:
            check.details = {**check.details, "scope": scope.details()}


def _drop_scope_tables(conn, scopes: dict[str, Scope]) -> None:
    from psycopg import sql

    for scope in scopes.values():
        if scope.target[0] == SCOPE_SCHEMA:
            try:
                conn.execute(sql.SQL("drop table if exists {}").format(sql.Identifier(*scope.target)))
            except psycopg.Error as err:  # never mask the run's own outcome
                log.warning("could not drop %s: %s", ".".join(scope.target), err)


# GX imports these at load time for one expectation we never use (KL divergence: scipy.stats for
# the statistic, altair for its chart) — about a quarter of `import great_expectations`
DEFERRED_MODULES = ("scipy.stats", "altair")


class _DeferredModule(types.ModuleType):
    """Stands in for a module until something reads one of its attributes, then imports it for
    real and forwards to it (and ``sys.modules`` holds the real one from then on)."""

    def __getattr__(self, attr: str) -> Any:
        with _DEFER_LOCK:
            if sys.modules.get(self.__name__) is self:
                del sys.modules[self.__name__]
            real = importlib.import_module(self.__name__)
            self.__dict__.update({k: v for k, v in vars(real).items() if k != "__class__"})
        return getattr(real, attr)


_DEFER_LOCK = threading.RLock()


def _defer_unused_modules() -> None:
    """Put a :class:`_DeferredModule` in ``sys.modules`` for each of :data:`DEFERRED_MODULES`
    not imported yet. ``__file__`` is set so that ``inspect``'s walks over ``sys.modules`` (GX
    calls ``inspect.stack()`` on Decimal values) do not trigger the import; ``__path__`` is not,
    so importing a submodule imports the real package first."""
    with _DEFER_LOCK:
        for name in DEFERRED_MODULES:
            if name in sys.modules:
                continue
            try:
                spec = importlib.util.find_spec(name)
            except (ImportError, ValueError):
                continue
            if spec is None:
                continue
            module = _DeferredModule(name)
            module.__spec__, module.__file__ = spec, spec.origin
            module.__loader__, module.__package__ = spec.loader, spec.parent
            sys.modules[name] = module
            parent, _, child = name.rpartition(".")
            if parent and parent in sys.modules:
                setattr(sys.modules[parent], child, module)


def _import_gx() -> None:
    try:
        _defer_unused_modules()
        import great_expectations  # noqa: F401
        import great_expectations.expectations  # noqa: F401
    except Exception:  # the real import in _validate_with_gx reports it
        log.debug("background GX import failed", exc_info=True)


# -- running GX ------------------------------------------------------------------------------------
# BASIC: counts and a few offending values; SUMMARY would add an index-list and an index-query
# metric to every row-level expectation, queries nobody reads
RESULT_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": 5}
BATCH_DEFINITION = "whole_table"


def _validate_with_gx(uri: str, runnable: list[tuple[TableSpec, list[Check]]], scopes: dict[str, Scope],
                      root: Path, docs_dir: Path | None, run_id: str,
                      timings: dict[str, float]) -> tuple[dict[str, dict[str, Any]], str | None]:
    """One GX validation per table: all its expectations in one suite, validated on one batch.

    The suites go to the (in-memory) expectations store and every result to the validation
    results store, so Data Docs show both; there is no Checkpoint nor ValidationDefinition: their
    bookkeeping (each run re-serialises and compares every definition to check it is "fresh",
    each added asset re-saves the datasource config) cost more than the queries at demo scale,
    and nothing here reads them back.
    """
    t0 = time.monotonic()
    _defer_unused_modules()
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    timings["gx_import_seconds"] = round(time.monotonic() - t0, 2)
    t0 = time.monotonic()
    ctx = _context(root, docs_dir, uri)
    # every asset in one call: add_table_asset re-saves the whole datasource config once per asset
    assets = [{"name": spec.qualified, "type": "table", "table_name": _target(spec, scopes)[1],
               "schema_name": _target(spec, scopes)[0], "batch_definitions": [{"name": BATCH_DEFINITION}]}
              for spec, _ in runnable]
    source = ctx.data_sources.add_postgres(DATASOURCE, connection_string="${" + URI_VARIABLE + "}", assets=assets)
    suites = [ctx.suites.add(gx.ExpectationSuite(name=spec.qualified, expectations=[to_expectation(c) for c in checks]))
              for spec, checks in runnable]
    timings["gx_setup_seconds"] = round(time.monotonic() - t0, 2)
    t0 = time.monotonic()
    run = RunIdentifier(run_name=f"gate-{run_id}", run_time=dt.datetime.now(dt.UTC))
    results = ctx.validation_results_store
    outcomes: dict[str, dict[str, Any]] = {}
    for (spec, checks), suite in zip(runnable, suites, strict=True):
        try:
            batch = source.get_asset(spec.qualified).get_batch_definition(BATCH_DEFINITION).get_batch()
            suite_result = batch.validate(suite, result_format=RESULT_FORMAT)
        except Exception as err:  # this table's checks error (and block); the other tables still run
            log.exception("GX validation of %s failed", spec.qualified)
            message = f"GX failed: {type(err).__name__}: {_redact_uri(str(err), uri)}"
            outcomes.update({c.check_id: {"success": False, "result": {}, "error": message} for c in checks})
            continue
        suite_result.meta.update(run_id=run, validation_time=run.run_time, batch_parameters=None)
        suite_key = ExpectationSuiteIdentifier(name=suite.name)
        results.store_validation_results(
            suite_validation_result=suite_result, expectation_suite_identifier=suite_key,
            suite_validation_result_identifier=ValidationResultIdentifier(suite_key, run, suite_result.batch_id))
        for r in suite_result.results:
            cid = (r.expectation_config.meta or {}).get("check_id")
            exc = _exception(r.exception_info)
            outcomes[cid] = {"success": bool(r.success), "result": r.result or {},
                             "error": exc.get("exception_message") if exc.get("raised_exception") else None}
    timings["gx_validate_seconds"] = round(time.monotonic() - t0, 2)
    t0 = time.monotonic()
    ctx.build_data_docs()
    timings["data_docs_seconds"] = round(time.monotonic() - t0, 2)
    sites = ctx.get_docs_sites_urls()
    docs = sites[0]["site_url"].removeprefix("file://") if sites and sites[0].get("site_url") else None
    return outcomes, docs


def _context(root: Path, docs_dir: Path | None, uri: str):
    """An in-memory GX context for this run, with the Data Docs site of the committed template.

    Suites, validation definitions, the checkpoint and results live in memory: they are rebuilt
    from the YAML every run anyway, and a file context re-serialised its whole YAML once per
    added asset (about a second and a half a night at demo scale). Only Data Docs are written.
    """
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = yaml.safe_load((root / "great_expectations.yml").read_text(encoding="utf-8"))
    site = config["data_docs_sites"]["local_site"]
    docs = Path(docs_dir) if docs_dir else root / "uncommitted" / "data_docs"
    site["store_backend"]["base_directory"] = str(docs.resolve())
    bars = config.get("progress_bars") or {}
    project = DataContextConfig(
        config_version=config.get("config_version", 4.0), analytics_enabled=False,
        progress_bars=ProgressBarsConfig(**bars) if bars else None, data_docs_sites={"local_site": site},
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False))
    return gx.get_context(mode="ephemeral", project_config=project,
                          runtime_environment={URI_VARIABLE: _sqlalchemy_url(uri)})


def _target(spec: TableSpec, scopes: dict[str, Scope]) -> tuple[str, str]:
    scope = scopes.get(spec.qualified)
    return scope.target if scope else (spec.schema, spec.table)


def _collect(runnable: list[tuple[TableSpec, list[Check]]], outcomes: dict[str, dict[str, Any]],
             scopes: dict[str, Scope], severity: Severity, result: GateResult, conn) -> None:
    for spec, checks in runnable:
        for check in checks:
            out = outcomes.get(check.check_id)
            if out is None:
                result.checks.append(_result(check, severity, ERROR, "GX returned no result", expected_text(check)))
            elif out["error"]:
                result.checks.append(_result(check, severity, ERROR, f"error: {out['error'][:500]}",
                                             expected_text(check)))
            elif out["success"]:
                result.checks.append(_result(check, severity, PASSED, observed_text(check, out["result"]),
                                             expected_text(check)))
            else:
                observed, details = observed_text(check, out["result"]), {"gx": _jsonable(out["result"])}
                if check.kind == "sql":
                    observed, details["sample"] = _sql_sample(conn, _target(spec, scopes), check, observed)
                result.checks.append(_result(check, severity, FAILED, observed, expected_text(check), details))


def _sql_sample(conn, target: tuple[str, str], check: Check, fallback: str) -> tuple[str, list[dict[str, Any]]]:
    """A few offending rows of a failed query check, so the message can say observed vs expected."""
    from psycopg import sql
    from psycopg.rows import dict_row

    table = sql.Identifier(*target).as_string(conn)
    query = check.params["query"].replace("{batch}", table)
    try:
        with conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(f"select * from ({query}) as offending limit 5").fetchall()  # noqa: S608
    except psycopg.Error as err:
        return f"{fallback} (sample unavailable: {str(err).strip()[:200]})", []
    rows = [{k: _plain(v) for k, v in r.items()} for r in rows]
    if rows and "observed" in rows[0] and "expected" in rows[0]:
        first = rows[0]
        return f"{first['observed']} vs expected {first['expected']} ({fallback}); first: {first}", rows
    return f"{fallback}; first: {rows[:3]}", rows


def _plain(value: Any) -> Any:
    return value if isinstance(value, int | float | str | bool | type(None)) else str(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return _plain(value)


def _uri(dsn: Any) -> str:
    return dsn.uri if hasattr(dsn, "uri") else str(dsn)


def _sqlalchemy_url(uri: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if uri.startswith(prefix):
            return "postgresql+psycopg://" + uri[len(prefix):]
    return uri


def _exception(info: Any) -> dict[str, Any]:
    """GX reports errors either flat or keyed by metric id; flatten to the first raised one."""
    if not info:
        return {}
    if "raised_exception" in info:
        return info
    for value in info.values():
        if isinstance(value, dict) and value.get("raised_exception"):
            return value
    return {}


def _redact_uri(text: str, uri: str) -> str:
    from urllib.parse import urlsplit

    password = urlsplit(uri).password
    return text.replace(password, "***") if password else text
