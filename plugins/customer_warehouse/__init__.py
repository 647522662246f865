"""Customer-analytics warehouse: sources → raw → dbt marts → quality gate → published marts.

The package is laid out by stage, the same way the data flows:

    sources/    HTTP clients and file readers, one module per source system
    loading/    COPY-based raw landing, batch ledger, quarantine, extract state
    transform/  dbt invocation and the churn model fit
    quality/    Great Expectations gate (audit)
    publish/    write–audit–publish swap, roles and grants
    serving/    the leadership dashboard
    emulators/  local HTTP emulators of every source API (tests and the demo)
    demo/       the deterministic demo company and its hidden ground truth

DAG files under ``dags/`` only wire these together.
"""

__version__ = "0.1.0"
