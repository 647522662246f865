"""Raw landing: every extract lands through :class:`RawBatch`, which

* streams rows into PostgreSQL with COPY (never row-by-row INSERT),
* replaces an interval or upserts by key keeping the newest version, in one transaction,
* records the batch in ``raw_meta.load_batches`` and bad rows in ``raw_meta.quarantine``
  in that same transaction, and refuses to commit unless rows read = loaded + quarantined,
* adds new columns (schema drift) instead of failing, and reports them.
"""

from . import unchanged
from .batch import BatchResult, FastPathRefused, LoadInvariantError, RawBatch
from .state import clear_state, get_state, set_state
from .tables import Column, RawTable, ensure_meta_schema

__all__ = [
    "BatchResult",
    "Column",
    "FastPathRefused",
    "LoadInvariantError",
    "RawBatch",
    "RawTable",
    "clear_state",
    "ensure_meta_schema",
    "get_state",
    "set_state",
    "unchanged",
]
