"""What a run publishes, chosen only from backtest windows that came before it: the plan.

One rule serves the nightly run (every window of the latest backtest came before it) and each window of a nested
backtest (the windows before that one): the choice is made the same way the user will get it.

- **Base per level.** The anchor is the diverse choice: the Mean of the models run at the level (the job file's
  `primary` when automatic combinations are off). A candidate (a single model, a named or automatic combination)
  replaces it only when it is clearly better: lower on average over the earlier windows by more than one standard
  error of the per-window differences. Among those, the lowest.
- **Fitted combinations.** Per level, `Weighted`: weights proportional to 1 / (mean metric)^2 over the earlier
  windows (Bates and Granger's inverse-MSE weights); `Top2`: the mean of the two models best there (select, then
  combine). Fitted on earlier windows only.
- **Reconciliation.** The job's `publish` method, or with `reconciliation.choose_from_backtest` the method whose
  worst level (relative to its Base) is lowest, by the same clearly-better rule against the job's method.
- **Never publish harm.** Where the chosen method was worse than its own Base at a level over the earlier windows,
  another method that is not worse anywhere is published; if there is none, the better of Base and BottomUp is
  published at those levels (the levels then no longer add up there: said in the summary and the manifest).
- **Intervals.** Per level and interval level, the factor on the published intervals' half-widths that would have
  covered the nominal share of the earlier windows' actuals (split conformal on the normalised errors). Without
  earlier windows the factor is 1.
"""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import polars as pl

from forecasting.job.context import Plan
from forecasting.job.models import BASE, MEAN, TOP2, WEIGHTED
from forecasting.job.schema import JobSpec
from forecasting.models.young import CHOSEN
from forecasting.reconcile.core import publish_label

BOTTOM_UP = "BottomUp"
__all__ = ["Plan", "choose"]
MIN_INTERVAL_ROWS = 20  # fewer earlier errors than this at a level: its intervals are left as reconciled
MIN_HALF_WIDTH = 1e-3  # relative to max(|mean|, 1 unit): narrower half-widths do not enter the interval factors


def clearly_better(challenger: np.ndarray, anchor: np.ndarray) -> bool:
    """Paired per-window scores (lower is better): the challenger's mean is lower by more than one standard error
    of the differences. With fewer than two windows nothing is clearly better."""
    diff = challenger - anchor
    if len(diff) < 2 or not np.isfinite(diff).all():
        return False
    # The same forecast by another name (a combination that equals the Mean) differs by rounding only.
    diff = np.where(np.abs(diff) <= 1e-9 * np.abs(anchor), 0.0, diff)
    return bool(diff.mean() + diff.std(ddof=1) / math.sqrt(len(diff)) < 0)


def _per_window(scores: pl.DataFrame, level: str, metric: str, cutoffs: list[date]) -> dict[str, np.ndarray]:
    """model -> its metric in each of `cutoffs` at `level`, for models scored finite in every one of them."""
    rows = scores.filter((pl.col("level") == level) & pl.col("cutoff").is_in(cutoffs) & pl.col(metric).is_finite())
    out = {}
    for (model,), part in rows.sort("model", "cutoff").group_by("model", maintain_order=True):
        if part.height == len(cutoffs):
            out[model] = part[metric].to_numpy()
    return out


def combination_weights(
    scores: pl.DataFrame, cutoffs: list[date], job: JobSpec
) -> dict[str, dict[str, dict[str, float]]]:
    """The fitted combinations' weights over `cutoffs`, per level: Weighted, inverse-MSE weights of the models run
    there; Top2, equal weights on the two with the lowest mean metric. Without earlier windows (or a model without
    scores in them) both are the equal-weight Mean."""
    weighted, top2 = {}, {}
    bottom = job.hierarchy.bottom
    metric = job.models.choice_metric
    for level in job.hierarchy.names:
        run = job.models.run_at(level, bottom)
        if len(run) < 2 or not job.models.automatic_combinations:
            continue
        per_window = _per_window(scores, level, metric, cutoffs) if cutoffs else {}
        means = {m: max(float(per_window[m].mean()), 1e-12) for m in run if m in per_window}
        if len(means) < len(run):
            weighted[level] = dict.fromkeys(sorted(run), 1.0 / len(run))
            if len(run) >= 3:
                top2[level] = dict.fromkeys(sorted(run), 1.0 / len(run))
            continue
        inverse = {m: 1.0 / v**2 for m, v in means.items()}
        weighted[level] = {m: inverse[m] / sum(inverse.values()) for m in sorted(inverse)}
        if len(run) >= 3:
            best = sorted(means, key=lambda m: (means[m], m))[:2]
            top2[level] = dict.fromkeys(sorted(best), 0.5)
    return {WEIGHTED: weighted, TOP2: top2}


def pick_against(per_window: dict[str, np.ndarray], anchor: str) -> str:
    """The anchor, unless candidates are clearly better than it over the windows: then the best of those."""
    better = [m for m, v in per_window.items() if m != anchor and clearly_better(v, per_window[anchor])]
    return min(better, key=lambda m: (per_window[m].mean(), m)) if better else anchor


def choose_base(scores: pl.DataFrame, cutoffs: list[date], job: JobSpec) -> tuple[dict[str, str], list[str]]:
    """Level -> the candidate behind Base, chosen from the base candidates' scores over `cutoffs`, and why."""
    primary = job.primary_models()
    if not job.models.choose_from_backtest or not cutoffs:
        return primary, [f"Base per level from the job file ({'no earlier window' if not cutoffs else 'no choice'})"]
    metric = job.models.choice_metric
    chosen, reasons = {}, []
    for level in job.hierarchy.names:
        pool = job.models.pool(level, job.hierarchy.bottom)
        per_window = {m: v for m, v in _per_window(scores, level, metric, cutoffs).items() if m in pool}
        anchor = primary[level] if primary[level] in per_window else (MEAN if MEAN in per_window else None)
        if anchor is None:
            chosen[level] = primary[level]
            reasons.append(f"{level}: {primary[level]} (no scores of it in the earlier windows)")
            continue
        pick = pick_against(per_window, anchor)
        chosen[level] = pick
        mean = per_window[pick].mean()
        reasons.append(
            f"{level}: {pick} ({metric} {mean:.3f} over {len(cutoffs)} windows"
            + (f"; clearly better than {anchor} {per_window[anchor].mean():.3f})" if pick != anchor else ")")
        )
    return chosen, reasons


def choose_launch(scores: pl.DataFrame, cutoffs: list[date], job: JobSpec) -> tuple[dict[str, str], list[str]]:
    """Level -> the launch model serving its new series, chosen like Base from the launch models' scores over
    `cutoffs` (scored on the new series only: no other series has their forecasts): the job's `launch_model` unless
    another launch model is clearly better over those windows. Levels whose new series were not scored in every
    window keep the job's model (the bottom level is always named)."""
    default = job.models.launch_model
    chosen = {job.hierarchy.bottom: default}
    if not cutoffs:
        return chosen, [f"new series: {default} (no earlier window)"]
    metric = job.models.choice_metric
    reasons = []
    for level in job.hierarchy.names:
        per_window = {m: v for m, v in _per_window(scores, level, metric, cutoffs).items() if m in CHOSEN}
        if default not in per_window:
            continue
        pick = pick_against(per_window, default)
        chosen[level] = pick
        others = ", ".join(f"{m} {v.mean():.3f}" for m, v in sorted(per_window.items()) if m != pick)
        reasons.append(
            f"{level} new series: {pick} ({metric} {per_window[pick].mean():.3f} over {len(cutoffs)} windows"
            + (f"; {others})" if others else ")")
        )
    return chosen, reasons


def _worst_ratio(reconciled: pl.DataFrame, base: pl.DataFrame, method: str, metric: str) -> np.ndarray:
    """Per window, the method's worst level relative to Base at that level."""
    joined = reconciled.filter(pl.col("model") == method).join(
        base.filter(pl.col("model") == BASE).select("level", "cutoff", pl.col(metric).alias("base")),
        on=["level", "cutoff"],
    )
    worst = joined.group_by("cutoff").agg((pl.col(metric) / pl.col("base")).max().alias("worst")).sort("cutoff")
    return worst["worst"].to_numpy()


def choose_method(
    reconciled: pl.DataFrame, base: pl.DataFrame, cutoffs: list[date], job: JobSpec
) -> tuple[str, dict[str, str], list[str]]:
    """(method, level -> fallback, reasons) from the reconciled methods' and Base's scores over `cutoffs`."""
    spec, metric = job.reconciliation, job.models.choice_metric
    anchor = publish_label(job)
    if not cutoffs:
        return anchor, {}, [f"reconciliation {anchor} from the job file (no earlier window)"]
    reconciled = reconciled.filter(pl.col("cutoff").is_in(cutoffs))
    base = base.filter(pl.col("cutoff").is_in(cutoffs))
    labels = [spec.label(m) for m in spec.methods]
    ratios = {m: _worst_ratio(reconciled, base, m, metric) for m in labels}
    ratios = {m: r for m, r in ratios.items() if len(r) == len(cutoffs) and np.isfinite(r).all()}
    method, reasons = anchor, []
    if spec.choose_from_backtest and anchor in ratios:
        better = [m for m, r in ratios.items() if m != anchor and clearly_better(r, ratios[anchor])]
        if better:
            method = min(better, key=lambda m: (ratios[m].mean(), m))
            reasons.append(f"reconciliation {method}: clearly better worst level than {anchor}")
    harmed = harmed_levels(reconciled, base, method, metric)
    if not harmed:
        return method, {}, reasons + [f"reconciliation {method}: no worse than Base at any level"]
    safe = [m for m in ratios if not harmed_levels(reconciled, base, m, metric)]
    if safe:
        pick = min(safe, key=lambda m: (ratios[m].mean(), m))
        return pick, {}, reasons + [f"{method} was worse than Base at {', '.join(harmed)}; {pick} is not: published"]
    fallback = {}
    for level in harmed:
        means = level_means(pl.concat([reconciled, base]), level, metric)
        fallback[level] = BOTTOM_UP if means.get(BOTTOM_UP, math.inf) < means.get(BASE, math.inf) else BASE
    said = ", ".join(f"{level} -> {fallback[level]}" for level in harmed)
    return method, fallback, reasons + [f"{method} was worse than Base at {', '.join(harmed)}: published {said}"]


def level_means(scores: pl.DataFrame, level: str, metric: str) -> dict[str, float]:
    rows = scores.filter((pl.col("level") == level) & pl.col(metric).is_finite())
    return {m: float(v) for m, v in rows.group_by("model").agg(pl.col(metric).mean()).iter_rows()}


def harmed_levels(reconciled: pl.DataFrame, base: pl.DataFrame, method: str, metric: str) -> list[str]:
    """The levels where `method` scored worse than its Base on average over the windows given."""
    ours = reconciled.filter(pl.col("model") == method).group_by("level").agg(pl.col(metric).mean().alias("ours"))
    theirs = base.filter(pl.col("model") == BASE).group_by("level").agg(pl.col(metric).mean().alias("base"))
    joined = ours.join(theirs, on="level").filter(pl.col("ours") > pl.col("base"))
    return sorted(joined["level"].to_list())


def interval_scales(published: pl.DataFrame, levels: list[int]) -> dict[str, dict[str, float]]:
    """Per level and interval level, the half-width factor that covers the nominal share of `published`'s actuals
    (rows of earlier windows: level, y, mean, lo_<L>, hi_<L>, the published intervals before any factor)."""
    scales: dict[str, dict[str, float]] = {}
    rows = published.filter(pl.col("y").is_not_null())
    for (level,), part in rows.sort("level").group_by("level", maintain_order=True):
        factors = {}
        for lv in levels:
            above = pl.col("y") > pl.col("mean")
            width = (
                pl.when(above).then(pl.col(f"hi_{lv}") - pl.col("mean")).otherwise(pl.col("mean") - pl.col(f"lo_{lv}"))
            )
            distance = (pl.col("y") - pl.col("mean")).abs()
            # A half-width that is numerically nothing (a zero forecast of an intermittent SKU, bounds clipped at
            # zero) says nothing about how wide the interval should be: such rows would make any factor explode.
            usable = width > MIN_HALF_WIDTH * pl.max_horizontal(pl.col("mean").abs(), pl.lit(1.0))
            score = part.select(pl.when(usable).then(distance / width).otherwise(None).alias("s"))["s"].drop_nulls()
            if score.len() < MIN_INTERVAL_ROWS:
                continue
            # The nominal quantile itself, interpolated: the aim is coverage near the nominal level, not at least
            # it (split conformal's (n + 1) / n correction over-covered the few, correlated errors of a top level).
            factors[str(lv)] = float(np.quantile(score.to_numpy(), lv / 100))
        if factors:
            scales[level] = factors
    return scales


def apply_interval_scales(rows: pl.DataFrame, scales: dict[str, dict[str, float]], levels: list[int]) -> pl.DataFrame:
    """Scale each row's interval half-widths by its level's factors (lower bounds kept at or above zero when the
    mean is); rows of levels without factors stay as they are."""
    exprs = []
    for lv in levels:
        factor = pl.lit(1.0)
        for level, factors in sorted(scales.items()):
            if str(lv) in factors:
                factor = pl.when(pl.col("level") == level).then(factors[str(lv)]).otherwise(factor)
        lo = pl.col("mean") - factor * (pl.col("mean") - pl.col(f"lo_{lv}"))
        hi = pl.col("mean") + factor * (pl.col(f"hi_{lv}") - pl.col("mean"))
        exprs += [pl.max_horizontal(lo, pl.lit(0.0)).alias(f"lo_{lv}"), hi.alias(f"hi_{lv}")]
    return nested_bounds(rows.with_columns(exprs), levels)


def nested_bounds(rows: pl.DataFrame, levels: list[int]) -> pl.DataFrame:
    """A wider nominal level's interval never inside a narrower one's (after each was scaled on its own)."""
    for narrow, wide in zip(levels, levels[1:], strict=False):
        rows = rows.with_columns(
            pl.min_horizontal(f"lo_{wide}", f"lo_{narrow}").alias(f"lo_{wide}"),
            pl.max_horizontal(f"hi_{wide}", f"hi_{narrow}").alias(f"hi_{wide}"),
        )
    return rows


NEW = " (new)"  # a level's new series (served by the launch models) have interval factors of their own: level + NEW


def mark_new(rows: pl.DataFrame, young_ids: pl.Series | None) -> pl.DataFrame:
    """Rows of the new series with their level renamed `<level> (new)`: their interval factors are chosen and
    applied apart (launch models' intervals are not the established models' and cover differently)."""
    if young_ids is None or young_ids.is_empty():
        return rows
    new = pl.col("unique_id").is_in(young_ids.implode())
    return rows.with_columns(pl.when(new).then(pl.col("level") + NEW).otherwise(pl.col("level")).alias("level"))


def scale_published(
    rows: pl.DataFrame, scales: dict[str, dict[str, float]], levels: list[int], young_ids: pl.Series | None
) -> pl.DataFrame:
    """apply_interval_scales with the new series' own factors (`<level> (new)`), levels named as before."""
    scaled = apply_interval_scales(mark_new(rows, young_ids), scales, levels)
    return scaled.with_columns(pl.col("level").str.strip_suffix(NEW)) if young_ids is not None else scaled


def choose(
    base_scores: pl.DataFrame,
    reconciled_scores: pl.DataFrame,
    published: pl.DataFrame | None,
    cutoffs: list[date],
    job: JobSpec,
    young_ids: pl.Series | None = None,
) -> Plan:
    """The whole plan from the windows at `cutoffs`: `base_scores` (per window: every candidate and Base),
    `reconciled_scores` (per window: every method), `published` (the published rows of those windows, unscaled);
    `young_ids`: the new series, whose interval factors are chosen from their own earlier errors."""
    base, reasons = choose_base(base_scores, cutoffs, job)
    launch, launch_reasons = choose_launch(base_scores, cutoffs, job)
    weights = combination_weights(base_scores, cutoffs, job)
    method, fallback, why = choose_method(reconciled_scores, base_scores, cutoffs, job)
    scales = {}
    if published is not None and cutoffs:
        scales = interval_scales(mark_new(published.filter(pl.col("cutoff").is_in(cutoffs)), young_ids), job.levels)
    return Plan(
        base=base,
        weights=weights,
        method=method,
        fallback=fallback,
        interval_scale=scales,
        windows=[str(c) for c in cutoffs],
        reasons=reasons + launch_reasons + why,
        launch=launch,
    )


def base_wape(base_rows: pl.DataFrame) -> dict[str, float]:
    """Per level, Base's sum of absolute errors over the sum of actuals in the rows given (the backtest's windows):
    how far Base typically is from the truth, which a published forecast far from its Base is compared with."""
    rows = base_rows.filter((pl.col("model") == BASE) & pl.col("y").is_not_null())
    table = rows.group_by("level").agg(
        ((pl.col("y") - pl.col("mean")).abs().sum() / pl.col("y").abs().sum()).alias("w")
    )
    return {level: float(w) for level, w in table.sort("level").iter_rows() if w is not None and math.isfinite(w)}


def with_published(
    reconciled: pl.DataFrame,
    base_wide: pl.DataFrame,
    members: pl.DataFrame,
    plan: Plan,
    levels: list[int],
    young_ids: pl.Series | None = None,
) -> pl.DataFrame:
    """The run's reconciled rows (unique_id, ds, method, mean, lo/hi) as published: Base rows added as method Base
    at the levels the plan publishes Base, and the published rows' intervals scaled by the plan's factors."""
    level_of = members.select("unique_id", "level")
    frames = [reconciled]
    for level, chosen in sorted(plan.fallback.items()):
        if chosen != BASE:
            continue
        ids = level_of.filter(pl.col("level") == level)["unique_id"]
        rename = {BASE: "mean"} | {f"{BASE}-{side}-{lv}": f"{side}_{lv}" for lv in levels for side in ("lo", "hi")}
        rows = base_wide.filter(pl.col("unique_id").is_in(ids.implode())).select("unique_id", "ds", *rename)
        clipped = rows.rename(rename).with_columns(
            pl.col("mean", *[c for c in rename.values() if c != "mean"]).clip(0.0)
        )
        frames.append(clipped.with_columns(pl.lit(BASE).alias("method")).select(reconciled.columns))
    out = pl.concat(frames).join(level_of, on="unique_id", how="left")
    published = pl.lit(False)
    for level in out["level"].unique().sort().to_list():
        published = (
            pl.when(pl.col("level") == level).then(pl.col("method") == plan.published_at(level)).otherwise(published)
        )
    out = out.with_columns(published.alias("__published"))
    scaled = scale_published(out.filter(pl.col("__published")), plan.interval_scale, levels, young_ids)
    return pl.concat([out.filter(~pl.col("__published")), scaled]).drop("level", "__published")


def departures(published: pl.DataFrame, base_wide: pl.DataFrame, members: pl.DataFrame, plan: Plan) -> list[str]:
    """Levels whose published forecast moved further from its Base than Base is typically from the truth (its
    backtest WAPE): a warning for the summary and the report."""
    joined = (
        published.join(base_wide.select("unique_id", "ds", BASE), on=["unique_id", "ds"])
        .join(members.select("unique_id", "level"), on="unique_id")
        .group_by("level")
        .agg(((pl.col("mean") - pl.col(BASE)).abs().sum() / pl.col(BASE).abs().sum()).alias("moved"))
        .sort("level")
    )
    warnings = []
    for level, moved in joined.iter_rows():
        typical = plan.base_wape.get(level)
        if typical is not None and moved is not None and moved > typical:
            warnings.append(
                f"{level}: the published forecast is {moved:.1%} from its Base, more than Base's backtest error "
                f"({typical:.1%}) would explain"
            )
    return warnings
