"""The quality gate: Great Expectations checks on raw batches and on the marts before publishing.

``run_gate(dsn, schemas)`` → :class:`GateResult` (pass/fail per check with its severity, Data Docs
index); checks live in ``expectations/checks/*.yml``, severities in ``expectations/severity.yml``.
"""

from .results import CheckResult, GateResult

__all__ = ["CheckResult", "GateResult", "run_gate"]


def run_gate(*args, **kwargs) -> GateResult:
    """See :func:`customer_warehouse.quality.gate.run_gate` (imported lazily: GX is slow to import)."""
    from .gate import run_gate as _run

    return _run(*args, **kwargs)
