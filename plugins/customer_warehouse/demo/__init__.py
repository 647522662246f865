"""The demo company «Зерно и Пар»: a deterministic generator of every source, its hidden truth, and
the evaluator that scores the published marts against that truth.

``python -m customer_warehouse.demo generate --out DIR [--truth DIR] --seed 42 --scale demo --today 2026-11-20``
writes the served folder (see docs/demo-dataset.md) and the truth folder (default ``DIR/../truth``);
``python -m customer_warehouse.demo evaluate --truth DIR --warehouse-uri URI [--json out.json]``
prints PASS/FAIL per target. See docs/demo-company.md for the company and its conventions.
"""

from __future__ import annotations


def generate(*args, **kwargs):
    from .generate import generate as _generate

    return _generate(*args, **kwargs)


def evaluate(*args, **kwargs):
    from .evaluate import evaluate as _evaluate

    return _evaluate(*args, **kwargs)
