"""Tables the accuracy benchmarks print (benchmarks.reference): the nested published forecast per level beside the
baselines scored on the same windows, and beside the published references. Pure polars on backtest frames."""

from __future__ import annotations

from datetime import date

import polars as pl

from forecasting.job.models import BASE

# M5 organizers, final evaluation (d_1942..d_1969), WRMSSE at levels 1-3 (total, state, store).
M5_PUBLISHED = {
    "total": {"sNaive": 0.560, "ES_bu": 0.426, "winner": 0.199},
    "region": {"sNaive": 0.673, "ES_bu": 0.514, "winner": 0.310},
    "warehouse": {"sNaive": 0.718, "ES_bu": 0.580, "winner": 0.400},
}
# Issue 28's targets at levels 1-3 as ratios to the seasonal naive on the same windows: the organizers' ES_bu minus
# 30 % over their seasonal naive, and the winner's ratio.
M5_TARGET_RATIO = {"total": 0.53, "region": 0.53, "warehouse": 0.57}
M5_WINNER_RATIO = {lv: refs["winner"] / refs["sNaive"] for lv, refs in M5_PUBLISHED.items()}
NESTED, IN_SAMPLE = "nested", "in-sample choice"


def ordered(column: str, order: list[str]) -> pl.Expr:
    """Sort key: `column` in the given order (levels top-down, models as listed), as a polars Enum."""
    return pl.col(column).cast(pl.Enum(order))


def markdown(frame: pl.DataFrame, digits: int = 3) -> str:
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    lines = [header, rule]
    for row in frame.iter_rows():
        cells = [f"{v:.{digits}f}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def scored(window_metrics: pl.DataFrame, cutoffs: list[date]) -> pl.DataFrame:
    """Per level, kind and model: the mean of each metric over the windows at `cutoffs` (the nested windows)."""
    metrics = ["mae", "rmse", "rmsse", "wrmsse", "mase", "coverage_80", "coverage_95", "spl", "wspl"]
    rows = window_metrics.filter(pl.col("cutoff").is_in(cutoffs))
    return rows.group_by("level", "kind", "model").agg(pl.col(m).mean() for m in metrics)


def single_models(metrics: pl.DataFrame, singles: list[str]) -> pl.DataFrame:
    return metrics.filter((pl.col("kind") == "base") & pl.col("model").is_in(singles))


def ratio_table(means: pl.DataFrame, metric: str, levels: list[str], singles: list[str]) -> pl.DataFrame:
    """Per level: the nested published forecast, the in-sample choice, SeasonalNaive, the best single base model
    in hindsight over the same windows (and which), the Mean, and the ratios of the published to those."""
    rows = []
    for level in levels:
        at = means.filter(pl.col("level") == level)

        def value(model: str, kind: str = "base", frame: pl.DataFrame = at) -> float | None:
            hit = frame.filter((pl.col("model") == model) & (pl.col("kind") == kind))[metric]
            return hit.item() if hit.len() else None

        best = single_models(at, singles).sort(metric, "model").head(1)
        nested, naive = value(NESTED, "published"), value("SeasonalNaive")
        rows.append(
            {
                "level": level,
                "published (nested)": nested,
                "in-sample choice": value(IN_SAMPLE, "published"),
                "SeasonalNaive": naive,
                "Mean": value("Mean"),
                "best single model (hindsight)": best[metric].item() if best.height else None,
                "which": best["model"].item() if best.height else "",
                "published / sNaive": nested / naive if nested and naive else None,
                "published / best single": nested / best[metric].item() if nested and best.height else None,
            }
        )
    return pl.DataFrame(rows)


def interval_table(means: pl.DataFrame, levels: list[str]) -> pl.DataFrame:
    """Coverage of the nested published 80 / 95 % intervals and their scaled pinball loss, per level, beside Base's."""
    rows = []
    for level in levels:
        at = means.filter(pl.col("level") == level)
        pub = at.filter((pl.col("kind") == "published") & (pl.col("model") == NESTED))
        base = at.filter((pl.col("kind") == "base") & (pl.col("model") == BASE))
        rows.append(
            {
                "level": level,
                "coverage 80": pub["coverage_80"].item(),
                "coverage 95": pub["coverage_95"].item(),
                "WSPL": pub["wspl"].item(),
                "Base coverage 80": base["coverage_80"].item() if base.height else None,
                "Base coverage 95": base["coverage_95"].item() if base.height else None,
                "Base WSPL": base["wspl"].item() if base.height else None,
            }
        )
    return pl.DataFrame(rows)


def per_window(window_metrics: pl.DataFrame, metric: str, levels: list[str], cutoffs: list[date]) -> pl.DataFrame:
    """Per nested window and level: the published forecast's `metric` over SeasonalNaive's."""
    rows = window_metrics.filter(pl.col("cutoff").is_in(cutoffs))
    pub = rows.filter((pl.col("kind") == "published") & (pl.col("model") == NESTED)).select(
        "level", "cutoff", pl.col(metric).alias("published")
    )
    naive = rows.filter((pl.col("kind") == "base") & (pl.col("model") == "SeasonalNaive")).select(
        "level", "cutoff", pl.col(metric).alias("naive")
    )
    joined = pub.join(naive, on=["level", "cutoff"]).with_columns((pl.col("published") / pl.col("naive")).alias("r"))
    wide = joined.pivot(on="level", index="cutoff", values="r").sort("cutoff")
    return wide.select(pl.col("cutoff").cast(pl.String), *[c for c in levels if c in wide.columns])


def plans_table(plans: list[dict], cutoffs: list[str], levels: list[str]) -> pl.DataFrame:
    """What each scored window published: Base per level, the reconciliation and its fallbacks."""
    rows = []
    for cutoff, plan in zip(cutoffs, plans, strict=True):
        rows.append(
            {
                "window": cutoff,
                "chosen from": f"{len(plan['windows'])} windows",
                **{level: plan["base"].get(level, "") for level in levels},
                "reconciliation": plan["method"],
                "fallback": ", ".join(f"{k}: {v}" for k, v in sorted(plan["fallback"].items())) or "-",
            }
        )
    return pl.DataFrame(rows)


def with_all_series(table: pl.DataFrame, metrics: pl.DataFrame) -> pl.DataFrame:
    """Add fpp3's "all series" row: the mean over every series = level means weighted by series counts."""
    counts = metrics.select("level", "series").unique("level")
    joined = table.join(counts, on="level")
    columns = [c for c in table.columns if c != "level"]
    total = joined.select(
        pl.lit("all series").alias("level"),
        *[((pl.col(c) * pl.col("series")).sum() / pl.col("series").filter(pl.col(c).is_not_null()).sum()).alias(c)
          for c in columns],
    )  # fmt: skip
    return pl.concat([table, total], how="vertical_relaxed")
