"""Publishing the audited marts: the write–audit–publish swap, roles and grants, de-identified
BI access (:mod:`.pii`) and alerts (:mod:`.alerts`)."""

from .publisher import PublishBlocked, publish

__all__ = ["PublishBlocked", "publish"]
