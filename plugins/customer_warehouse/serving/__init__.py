"""The leadership dashboard: profitability, JTBD, churn, episodic and data-status pages drawn
from the published ``marts`` as the ``bi_reader`` role.

Dashboards as code: each page is a YAML file under ``pages/`` (SQL + chart spec per panel), served
by a small FastAPI app (:mod:`.app`) and drawn in the browser by the vendored Apache ECharts.
Why not Superset or Evidence: see ``docs/dashboard.md``.
"""

from .app import create_app

__all__ = ["create_app"]
