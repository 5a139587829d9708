"""Hierarchical demand and manpower forecasting. Subpackages follow a run's data path and import only downward:
job -> data -> models -> reconcile -> evaluate -> staffing -> outputs; pipeline and cli on top (docs/design.md)."""
