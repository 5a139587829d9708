"""Tables the accuracy benchmarks print (benchmarks.reference): metrics per level beside the published figures,
and the M5 daily hold-out split into its level and day-to-day shape. Pure polars on backtest frames; no runs here."""

from __future__ import annotations

from datetime import date

import polars as pl

from forecasting import reconcile as rec  # FIXME

# M5 organizers, final evaluation (d_1942..d_1969), WRMSSE at levels 1-3 (total, state, store).
M5_PUBLISHED = {
    "total": {"sNaive": 0.560, "ES_bu": 0.426, "winner": 0.199},
    "region": {"sNaive": 0.673, "ES_bu": 0.514, "winner": 0.310},
    "warehouse": {"sNaive": 0.718, "ES_bu": 0.580, "winner": 0.400},
}
TARGET_OF_ES_BU = 0.7  # the target: at least 30 % below the published ES_bu at each level


def ordered(column: str, order: list[str]) -> pl.Expr:
    """Sort key: `column` in the given order (levels top-down, models as listed), as a polars Enum."""
    return pl.col(column).cast(pl.Enum(order))


def metric_table(metrics: pl.DataFrame, metric: str, levels: list[str]) -> pl.DataFrame:
    """level x model/method table of one metric (base models, then reconciliation methods)."""
    wide = metrics.pivot(on="model", index="level", values=metric, aggregate_function="first").sort(
        ordered("level", levels)
    )
    base = sorted(metrics.filter(pl.col("kind") == "base")["model"].unique().to_list())
    reconciled = sorted(metrics.filter(pl.col("kind") == "reconciled")["model"].unique().to_list())
    return wide.select("level", *base, *reconciled)


def markdown(frame: pl.DataFrame, digits: int = 3) -> str:
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    lines = [header, rule]
    for row in frame.iter_rows():
        cells = [f"{v:.{digits}f}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def level_known(long: pl.DataFrame, by: str) -> pl.DataFrame:
    """The same forecasts with each series' window mean set to its actual mean (every value, intervals too, times
    actual mean / forecast mean): what error is left is the day-to-day shape's, the rest was the level's."""
    group = ["unique_id", "cutoff", by]
    factor = pl.col("y").mean().over(group) / pl.col("mean").mean().over(group)
    values = ["mean", *[c for c in long.columns if c.startswith(("lo_", "hi_"))]]
    return long.with_columns(pl.col(values) * factor)


def window_bias(long: pl.DataFrame, by: str, name: str) -> pl.DataFrame:
    """level x cutoff: sum of `name`'s errors / sum of actuals over the level's series (negative: too low)."""
    rows = long.filter(pl.col(by) == name).group_by("level", "cutoff")
    return rows.agg(((pl.col("mean") - pl.col("y")).sum() / pl.col("y").sum()).alias("bias")).sort("cutoff")


def seasonal_level_errors(Y_df: pl.DataFrame, levels: pl.DataFrame, horizon: int, last_cutoff: date) -> pl.DataFrame:
    """How well a window's level could be known ahead: for every `horizon`-day window ending at `last_cutoff` or
    earlier with a year of history before it, actual window mean / (mean of the `horizon` days before the cutoff
    x last year's ratio of the same two spans), per series: the level error a plain seasonal level estimate makes.
    Polars' rolling means over each series' daily rows (the gate leaves no gaps)."""
    before = pl.col("y").rolling_mean(horizon).over("unique_id")  # the `horizon` days ending at ds
    after = before.shift(-horizon).over("unique_id")  # the `horizon` days after ds
    seasonal = (after / before).shift(364).over("unique_id")  # the same ratio a year (52 weeks) earlier
    days_back = (pl.lit(last_cutoff) - pl.col("cutoff")).dt.total_days()
    errors = (
        Y_df.sort("unique_id", "ds")
        .select("unique_id", pl.col("ds").alias("cutoff"), (after / (before * seasonal)).alias("ratio"))
        .filter((days_back >= 0) & (days_back % horizon == 0) & pl.col("ratio").is_not_null())
    )
    return errors.join(levels, on="unique_id").with_columns((pl.col("ratio") - 1).alias("error"))


def level_table(errors: pl.DataFrame, bias: pl.DataFrame, holdout: date, order: list[str]) -> pl.DataFrame:
    """Per level: the seasonal level estimate's error in the hold-out window beside its spread in every earlier
    window, and Base's own bias in the hold-out beside its mean over the selection windows."""
    earlier = errors.filter(pl.col("cutoff") < holdout).group_by("level")
    spread = earlier.agg(
        pl.col("cutoff").n_unique().alias("earlier windows"),
        (pl.col("error") ** 2).mean().sqrt().alias("seasonal level: RMS error, earlier windows"),
    )
    held = (
        errors.filter(pl.col("cutoff") == holdout)
        .group_by("level")
        .agg(pl.col("error").mean().alias("seasonal level: mean error, hold-out"))
    )
    base = bias.group_by("level").agg(
        pl.col("bias").filter(pl.col("cutoff") < holdout).mean().alias("Base bias, selection windows"),
        pl.col("bias").filter(pl.col("cutoff") == holdout).mean().alias("Base bias, hold-out"),
    )
    table = spread.join(held, on="level").join(base, on="level")
    return table.sort(ordered("level", order))


TARGET = "target (ES_bu - 30 %)"


def published_references() -> pl.DataFrame:
    """level, published sNaive / ES_bu / winner (the organizers' WRMSSE at levels 1-3, M5_PUBLISHED) and the
    issue's target derived from ES_bu."""
    published = pl.DataFrame(
        [{"level": lv, **{f"published {k}": v for k, v in refs.items()}} for lv, refs in M5_PUBLISHED.items()]
    )
    return published.with_columns((pl.col("published ES_bu") * TARGET_OF_ES_BU).alias(TARGET))


def naive_relative(held: pl.DataFrame, models: list[str], naive: str = "SeasonalNaive") -> pl.DataFrame:
    """Each level's WRMSSE as a share of the seasonal naive's in the same window, beside the published figures' shares
    of the published sNaive: the organizers' sNaive at levels 1-3 is the weekly naive of the aggregate, so the same
    method measures how hard each window was. Context for the target, not a substitute for it."""
    shares = [(pl.col(m) / pl.col(naive)).alias(f"{m} / {naive}") for m in models]
    return (
        held.join(published_references(), on="level", how="left")
        .select(
            "level",
            pl.col(naive).alias(f"{naive}, this window"),
            "published sNaive",
            (pl.col(naive) / pl.col("published sNaive")).alias("this window / published window (sNaive)"),
            *shares,
            (pl.col("published ES_bu") / pl.col("published sNaive")).alias("published ES_bu / sNaive"),
            (pl.col("published winner") / pl.col("published sNaive")).alias("published winner / sNaive"),
            (pl.col(TARGET) / pl.col("published sNaive")).alias("target / sNaive"),
        )
        .sort(ordered("level", list(M5_PUBLISHED)))
    )


def interval_table(
    selection: pl.DataFrame, holdout: pl.DataFrame, models: list[str], levels: list[str]
) -> pl.DataFrame:
    """(level, model) rows: 80 / 95 % coverage and WSPL over the selection windows beside the hold-out's."""
    columns = {"coverage_80": "80 % coverage", "coverage_95": "95 % coverage", "wspl": "WSPL"}

    def part(metrics: pl.DataFrame, label: str) -> pl.DataFrame:
        kept = metrics.filter(pl.col("model").is_in(models))
        return kept.select("level", "model", *[pl.col(c).alias(f"{name}, {label}") for c, name in columns.items()])

    return (
        part(selection, "selection")
        .join(part(holdout, "hold-out"), on=["level", "model"])
        .sort(ordered("level", levels), ordered("model", models))
    )


def target_table(metrics: pl.DataFrame, metric: str, levels: list[str]) -> pl.DataFrame:
    """level x reconciliation: `metric` relative to the best base model at that level (<= 1 meets the target)."""
    ratios = rec.target_ratios(metrics, metric).pivot(on="model", index="level", values="ratio")
    return ratios.sort(ordered("level", levels)).select("level", *sorted(ratios.columns[1:]))


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
