"""Middle-out (`MiddleOut_<upper>`, or `MiddleOut_<upper>@<level>` from a level other than the job's `middle_level`;
from the top level it is top-down): the few series down to the middle level (M5 monthly: total and 3 regions) are
reconciled among themselves (BottomUp from the middle level, or MinTrace with a dense covariance of
those series only, which mint_shrink needs), then every lower series is split from them by forecast proportions
(hierarchicalforecast's TopDown, sparse). Why: at 30,490 SKUs, MinTrace on the whole tree lets the SKU sum outvote
better aggregate forecasts, and a dense covariance of all 30,504 series does not fit in memory. Intervals: the
upper series get the conformal intervals of their own reconciliation; a lower series' base interval is scaled by
the same factor as its mean (reconciled / base), which is what forecast proportions do to every quantile.
"""

from __future__ import annotations

from datetime import date

import polars as pl
from hierarchicalforecast.core import HierarchicalReconciliation
from hierarchicalforecast.methods import BottomUp, TopDown, TopDownSparse

from forecasting.data.hierarchy import Hierarchy, build_hierarchy
from forecasting.job.hierarchy import HierarchySpec
from forecasting.job.reconciliation import middle_out_parts
from forecasting.job.schema import JobSpec
from forecasting.models.base import BASE
from forecasting.reconcile.methods import DENSE_ONLY, MAX_DENSE_SERIES, library_min_trace, with_fallbacks
from forecasting.reconcile.wide import tag_arrays, wide_to_methods


def upper_hierarchy(hierarchy: Hierarchy, middle: str) -> Hierarchy:
    """The levels down to `middle` as a hierarchy of their own (dense S: a handful of series), with the same ids.
    From the top level it is that one series (the split below is then top-down by forecast proportions)."""
    names = hierarchy.spec.names
    levels = {name: hierarchy.spec.levels[name] for name in names[: names.index(middle) + 1]}
    keys = levels[middle]
    nested = {child: parent for child, parent in hierarchy.spec.nested.items() if {child, parent} <= set(keys)}
    spec = HierarchySpec(columns=keys, levels=levels, nested=nested)
    # aggregate() wants a history; one dummy period is enough for S and the tags (the run may have dropped Y_df).
    rows = hierarchy.members.filter(pl.col("level") == middle).select(*keys, pl.lit(date(2000, 1, 1)).alias("ds"))
    return build_hierarchy(rows.with_columns(pl.lit(0.0).alias("y")), spec, sparse=False)


def middle_out(
    hierarchy: Hierarchy,
    base: pl.DataFrame,
    insample: pl.DataFrame,
    job: JobSpec,
    label: str,
    sparse: bool = True,
    notes: list[str] | None = None,
) -> pl.DataFrame:
    """Reconcile the levels down to the middle one among themselves, then split every lower series from them by
    forecast proportions; lower intervals are the base intervals scaled like their means (module docstring)."""
    upper = upper_hierarchy(hierarchy, job.reconciliation.middle_level_of(label, hierarchy.spec.names))
    upper_ids = upper.members["unique_id"].to_list()
    variant = middle_out_parts(label)[0]
    if variant in DENSE_ONLY and len(upper_ids) > MAX_DENSE_SERIES:
        raise ValueError(f"reconciliation {label} needs a dense covariance of {len(upper_ids)} upper series")
    method = BottomUp() if variant == "BottomUp" else library_min_trace(variant, job, sparse=False)
    clipped = base.select("unique_id", "ds", pl.col(BASE).clip(lower_bound=0.0))
    is_upper = pl.col("unique_id").is_in(upper_ids)

    def run(reconciler: object) -> pl.DataFrame:
        return HierarchicalReconciliation(reconcilers=[reconciler]).reconcile(
            Y_hat_df=clipped.filter(is_upper),
            S_df=upper.S,
            tags=tag_arrays(upper),
            Y_df=insample.filter(is_upper),
            level=job.levels,
            intervals_method="conformal",
            seed=job.seed,
        )

    upper_label = "BottomUp" if variant == "BottomUp" else f"MinTrace_{variant}"
    wide = with_fallbacks(upper_label, method, run, job, False, [] if notes is None else notes)
    (upper_part,) = wide_to_methods(wide, [label], job)
    # Coherent upper forecasts in place of the upper base ones: forecast proportions then leave them as they are
    # and split each middle series over its children in proportion to their base forecasts.
    proportions = (TopDownSparse if sparse else TopDown)(method="forecast_proportions")
    y_hat = pl.concat([upper_part.select("unique_id", "ds", pl.col("mean").alias(BASE)), clipped.filter(~is_upper)])
    split = HierarchicalReconciliation(reconcilers=[proportions]).reconcile(
        Y_hat_df=y_hat, S_df=hierarchy.S, tags=tag_arrays(hierarchy)
    )
    (column,) = [c for c in split.columns if c.startswith(f"{BASE}/")]
    bounds = [f"{side}_{lv}" for lv in job.levels for side in ("lo", "hi")]
    lower = (
        split.filter(~is_upper)
        .select("unique_id", "ds", pl.col(column).alias("mean"))
        .join(
            base.select("unique_id", "ds", BASE, *[f"{BASE}-{b.replace('_', '-')}" for b in bounds]),
            on=["unique_id", "ds"],
        )
        .with_columns(pl.when(pl.col(BASE) > 0).then(pl.col("mean") / pl.col(BASE)).otherwise(1.0).alias("factor"))
        .select(
            "unique_id",
            "ds",
            "mean",
            *[
                (pl.col(f"{BASE}-{b.replace('_', '-')}").clip(lower_bound=0.0) * pl.col("factor")).alias(b)
                for b in bounds
            ],
            pl.lit(label).alias("method"),
        )
    )
    return pl.concat([upper_part.select(lower.columns), lower])
