"""A self-contained HTML report of one published run, for planners who would rather look than query parquet.

What it shows: fan charts (history, reconciled mean, 80/95 % bands) for every level above the bottom one (named as the
job names them), the top bottom-level series by forecast volume and by backtest error, staffing per warehouse x
process at p50/p80/p95 when the job has labour standards (no section otherwise), the latest backtest's accuracy
per level and model, data-quality warnings and run metadata.

Where the history comes from: a run folder stores forecasts, not history, so the history is read again through the
library, exactly as the run read it (load -> validate -> aggregate, with the run's own job config and as-of date from
its manifest): the caller passes `history`, the frame or the function that reads it (forecasting.pipeline.history;
the nightly flow already holds the aggregated history in memory and passes that). When the source files' hashes differ
from the manifest's, the report says so: the history drawn may then differ from the one the run was fitted on.

plotly.js is embedded in the page (about 4.8 MB), so the file opens offline; it is written into the run folder
atomically (temp file, then rename) as `report.html`.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import plotly
import plotly.offline
import polars as pl

from forecasting.data import sources as io
from forecasting.job.loading import JobConfigError, parse_job
from forecasting.job.schema import JobSpec
from forecasting.outputs import runs
from forecasting.outputs.atomic import write_text_atomic
from forecasting.outputs.report_charts import (
    PAGE_STYLE,
    definition_list,
    fan_chart,
    figure_html,
    staffing_chart,
    table_html,
)
from forecasting.outputs.report_drivers import drivers_section
from forecasting.outputs.report_grains import grains_section

REPORT = "report.html"
HISTORY_PERIODS = {"day": 182, "week": 104, "month": 36, "quarter": 20}
MAX_SERIES_PER_LEVEL = 12  # fan charts per level; a level with more series shows its largest by forecast volume
# The run's history (unique_id, ds, y of every level), or the function that reads it for a job and as-of date.
History = pl.DataFrame | Callable[[JobSpec, date], pl.DataFrame]
FAN_CHARTS_FOR_TOP_SKUS = 5
LOW_COVERAGE_80 = 0.70


def write_report(
    job: JobSpec,
    as_of: str | None = None,
    history: History | None = None,
    top: int = 10,
    run: Path | None = None,
) -> Path:
    """Render the report of the job's run (`run` folder, or the run for `as_of`, default the latest) and write it
    atomically into the run folder. `history`: all levels' series (unique_id, ds, y), or the function that reads
    them for the run's job and as-of date."""
    folder = run if run is not None else runs.run_dir(job, as_of)
    page = build_report(job, folder, history, top)
    path = folder / REPORT
    write_text_atomic(page, path)
    return path


def run_job_spec(job: JobSpec, manifest: dict[str, Any]) -> JobSpec:
    """The job exactly as the run saw it (its manifest's config), or the given job if that config no longer
    validates (the job schema changed since)."""
    try:
        return parse_job(manifest["config"], origin="run manifest")
    except (JobConfigError, KeyError):
        return job


def latest_backtest(job: JobSpec) -> Path | None:
    try:
        return runs.run_dir(job, None, subdir="backtests")
    except FileNotFoundError:
        return None


def build_report(job: JobSpec, folder: Path, history: History | None = None, top: int = 10) -> str:
    """The whole page as one HTML string."""
    manifest = runs.read_manifest(folder)
    spec = run_job_spec(job, manifest)
    as_of = date.fromisoformat(manifest["as_of"])
    warnings = quality_warnings(spec, manifest)
    if history is None:
        raise ValueError("the report needs the run's history: a frame, or the function that reads it")
    if callable(history):
        history = history(spec, as_of)
    forecasts = pl.read_parquet(folder / "reconciled_forecasts.parquet").filter(pl.col("published"))
    staffing = pl.read_parquet(folder / "staffing.parquet")
    backtest = latest_backtest(job)
    levels = spec.hierarchy.names
    bottom = spec.hierarchy.bottom
    keep = HISTORY_PERIODS.get(spec.freq, 36)
    recent = history.filter(pl.col("ds") > pl.col("ds").max().dt.offset_by(f"-{keep}{_unit(spec.freq)}"))
    recent = recent.filter(pl.col("ds") <= as_of)

    sections = [
        f"<h2>Forecasts by level</h2><p class='note'>{len(levels) - 1} levels above {html.escape(bottom)};"
        f" history: last {keep} periods; bands: reconciled 80 % and 95 % intervals of the published method"
        f" ({html.escape(str(manifest['summary'].get('published_method', '')))}).</p>"
    ]
    for level in levels[:-1]:
        sections.append(_level_fans(level, forecasts, recent))
    sections.append(grains_section(folder, levels))  # jobs with time grains: every grain
    sections.append(drivers_section(folder, levels, backtest))
    volume = top_by_volume(forecasts, bottom, spec, top)
    sections.append(f"<h2>Top {top} series of level {html.escape(bottom)} by forecast volume</h2>")
    sections.append(table_html(volume, 1))
    fans = [
        figure_html(fan_chart(f"{bottom} {uid}", _series(recent, uid), _series(forecasts, uid)), f"fan-top-{i}")
        for i, uid in enumerate(volume["unique_id"].head(FAN_CHARTS_FOR_TOP_SKUS).to_list())
    ]
    sections.append(f"<div class='grid'>{''.join(fans)}</div>")
    sections.append(f"<h2>Top {top} series of level {html.escape(bottom)} by backtest error</h2>")
    if backtest is None:
        sections.append(
            "<p class='warn'>No backtest is published for this job, so there is no error to rank by."
            f" Run <code>forecasting backtest --job {html.escape(job.name)}</code>.</p>"
        )
    else:
        errors = top_by_error(backtest, bottom, spec, top)
        sections.append(
            f"<p class='note'>Backtest {html.escape(backtest.name)}: published reconciliation, absolute"
            " error summed over windows and periods.</p>" + table_html(errors, 2)
        )
    if spec.staffing is not None:  # a job without labour standards has no staffing section at all
        sections.append(_staffing_section(staffing))
    sections.append("<h2>Backtest accuracy per level and model</h2>")
    if backtest is None:
        sections.append("<p>No backtest is published for this job.</p>")
    else:
        metrics, note = accuracy_table(backtest, levels)
        warnings += note
        sections.append(
            f"<p class='note'>Backtest {html.escape(backtest.name)} (as of"
            f" {html.escape(runs.read_manifest(backtest).get('as_of', '?'))}).</p>"
        )
        sections.append(table_html(metrics, 3))
    warn_html = "".join(f"<div class='warn'>{html.escape(w)}</div>" for w in warnings) or "<p>None.</p>"
    body = (
        f"<h1>{html.escape(spec.name)}: run as of {as_of}</h1><p class='note'>{html.escape(spec.description or '')}"
        f"</p><h2>Data-quality warnings</h2>{warn_html}{''.join(sections)}<h2>Run metadata</h2>"
        f"{_metadata(manifest, folder)}"
    )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(spec.name)} {as_of}</title><style>{PAGE_STYLE}</style>"
        f"<script>{plotly.offline.get_plotlyjs()}</script></head><body>{body}</body></html>"
    )


def _unit(freq: str) -> str:
    return {"day": "d", "week": "w", "month": "mo", "quarter": "q"}.get(freq, "mo")


def _series(frame: pl.DataFrame, unique_id: str) -> pl.DataFrame:
    return frame.filter(pl.col("unique_id") == unique_id).sort("ds")


def _level_fans(level: str, forecasts: pl.DataFrame, history: pl.DataFrame) -> str:
    volume = (
        forecasts.filter(pl.col("level") == level)
        .group_by("unique_id")
        .agg(pl.col("mean").sum())
        .sort(["mean", "unique_id"], descending=[True, False])
    )
    ids = volume["unique_id"].head(MAX_SERIES_PER_LEVEL).to_list()
    note = (
        f"<p class='note'>{len(ids)} of {volume.height} series, largest forecast volume first.</p>"
        if volume.height > len(ids)
        else ""
    )
    charts = [
        figure_html(fan_chart(f"{level}: {uid}", _series(history, uid), _series(forecasts, uid)), f"fan-{level}-{i}")
        for i, uid in enumerate(ids)
    ]
    return f"<h3>{html.escape(level)}</h3>{note}<div class='grid'>{''.join(charts)}</div>"


def top_by_volume(forecasts: pl.DataFrame, bottom: str, job: JobSpec, top: int) -> pl.DataFrame:
    """Bottom-level series with the largest forecast over the horizon (published method)."""
    keys = [c for c in job.hierarchy.columns if c in forecasts.columns]
    return (
        forecasts.filter(pl.col("level") == bottom)
        .group_by("unique_id", *keys)
        .agg(
            pl.col("mean").sum().alias("forecast"),
            *[pl.col(c).sum().alias(f"sum of {c}") for c in ("lo_80", "hi_80") if c in forecasts.columns],
            pl.col("ds").min().alias("from"),
            pl.col("ds").max().alias("to"),
        )
        .sort(["forecast", "unique_id"], descending=[True, False])
        .head(top)
    )


def top_by_error(backtest: Path, bottom: str, job: JobSpec, top: int) -> pl.DataFrame:
    """Bottom-level series with the largest absolute error of the published reconciliation in the backtest."""
    frame = pl.read_parquet(backtest / "backtest_reconciled.parquet")
    keys = [c for c in job.hierarchy.columns if c in frame.columns]
    return (
        frame.filter((pl.col("level") == bottom) & pl.col("published"))
        .group_by("unique_id", *keys)
        .agg(
            (pl.col("y") - pl.col("mean")).abs().sum().alias("abs error"),
            pl.col("y").sum().alias("actual"),
            (pl.col("mean") - pl.col("y")).sum().alias("error (forecast - actual)"),
            pl.col("cutoff").n_unique().alias("windows"),
        )
        .with_columns((pl.col("abs error") / pl.col("actual")).alias("WAPE"))
        .sort(["abs error", "unique_id"], descending=[True, False])
        .head(top)
    )


def accuracy_table(backtest: Path, levels: list[str]) -> tuple[pl.DataFrame, list[str]]:
    """The backtest's metrics per level and model/method, levels in hierarchy order, and a warning for each
    published reconciliation whose 80 % intervals covered well under 80 %."""
    metrics = pl.read_parquet(backtest / "metrics.parquet")
    order = {lv: i for i, lv in enumerate(levels)}
    wanted = [
        "level",
        "kind",
        "model",
        "rmsse",
        "wrmsse",
        "mase",
        "mae",
        "bias",
        "coverage_80",
        "coverage_95",
        "series",
        "windows",
    ]
    table = metrics.select([c for c in wanted if c in metrics.columns]).sort(
        pl.col("level").replace_strict(order, default=len(order)), "kind", "model"
    )
    notes = []
    if "coverage_80" in metrics.columns:
        low = table.filter((pl.col("kind") == "reconciled") & (pl.col("coverage_80") < LOW_COVERAGE_80))
        if low.height:
            cells = ", ".join(f"{m} at {lv} {c:.0%}" for lv, m, c in low.select("level", "model", "coverage_80").rows())
            notes.append(
                f"Backtest: reconciled 80 % intervals covered well under 80 % of actuals ({cells}): the"
                " bands, and the p80 staffing plan built on them, are riskier than they say."
            )
    return table, notes


def quality_warnings(job: JobSpec, manifest: dict[str, Any]) -> list[str]:
    """What a planner should know before trusting the charts, from the run's manifest."""
    summary = manifest.get("summary", {})
    notes = [f"Data: {warning}." for warning in manifest.get("warnings", summary.get("warnings", []))]
    if summary.get("dropped_periods"):
        notes.append("Partial periods left out of the history: " + ", ".join(summary["dropped_periods"]))
    if summary.get("prorated_periods"):
        notes.append("Partial periods scaled to full ones (prorated): " + ", ".join(summary["prorated_periods"]))
    if str(summary.get("model_choice", "")).startswith("job file"):
        notes.append(f"Models were not chosen from a backtest: {summary['model_choice']}.")
    # The plan's own warnings: levels published as Base (not coherent) and published forecasts that moved further
    # from their Base than the backtest errors explain.
    notes += [f"{warning[0].upper()}{warning[1:]}." for warning in summary.get("warnings", [])]
    new = summary.get("new_series") or {}
    if new.get("count"):
        served = ", ".join(f"{model} {n}" for model, n in new.get("served_by", {}).items())
        notes.append(
            f"{new['count']} new series (shorter than the {new['shorter_than_periods']} periods the level's models "
            f"need) forecast by the launch models: {served}."
        )
    notes += [f"{note[0].upper()}{note[1:]}." for note in summary.get("models_not_offered", [])]
    if "in-sample" in str(summary.get("interval_calibration", "")):
        notes.append("Reconciled intervals are calibrated on in-sample fits, which tends to make them too narrow.")
    try:
        now = io.input_hashes(job)
    except Exception as exc:  # a missing or unreadable source: the history below could not be the run's
        notes.append(f"Could not hash the job's inputs ({exc}).")
    else:
        changed = sorted(k for k, v in manifest.get("inputs_sha256", {}).items() if now.get(k) != v)
        if changed:
            notes.append("Inputs changed since this run (history drawn may differ): " + ", ".join(changed))
    if manifest.get("tables", {}).get("staffing") == 0 and job.staffing is not None:
        notes.append("The run has no staffing plan.")
    return notes


def _staffing_section(staffing: pl.DataFrame) -> str:
    head = "<h2>Staffing: headcount per warehouse x process (p50 / p80 / p95)</h2>"
    if staffing.is_empty() or not {"warehouse", "quantile", "headcount"} <= set(staffing.columns):
        return head + "<p>No staffing plan in this run.</p>"
    if "process" not in staffing.columns:  # runs from before the per-process plan
        staffing = staffing.with_columns(pl.lit("all processes").alias("process"))
    charts = [
        figure_html(staffing_chart(wh, staffing.filter(pl.col("warehouse") == wh)), f"staff-{i}")
        for i, wh in enumerate(sorted(staffing["warehouse"].unique().to_list()))
    ]
    index = ["warehouse", "ds"] + (["grain"] if "grain" in staffing.columns else [])  # days, then weeks beyond
    totals = (
        staffing.group_by(*index, "quantile")
        .agg(pl.col("headcount").sum())
        .pivot(on="quantile", index=index, values="headcount")
        .sort("warehouse", "ds")
    )
    return head + "".join(charts) + table_html(totals, 0, "headcount summed over processes")


def order_lines_said(lines: dict[str, Any] | None) -> str | None:
    """What the order-lines rules left out, as the run summary counts them (None: the source is not order lines)."""
    if not lines:
        return None
    removed = "; ".join(
        f"{r['rule']}: {r['rows']:,} {r.get('rows_are', 'lines')}, {r['quantity']:,.0f} units" for r in lines["removed"]
    )
    counted = f"{lines['lines']:,} read, {lines['lines_counted']:,} counted ({lines['quantity_counted']:,.0f} units)"
    return f"{counted}, returns: {lines['returns']}; left out: {removed or 'nothing'}"


def _metadata(manifest: dict[str, Any], folder: Path) -> str:
    summary = manifest.get("summary", {})
    items = {
        "job": manifest.get("job"),
        "as of": manifest.get("as_of"),
        "run id": manifest.get("run_id"),
        "created at": manifest.get("created_at"),
        "run folder": folder,
        "history used": summary.get("history"),
        "frequency, horizon": f"{summary.get('freq')}, {summary.get('horizon')}",
        "series per level": ", ".join(f"{k} {v}" for k, v in summary.get("series_per_level", {}).items()),
        "base model per level": ", ".join(
            f"{r['level']}={r['model']} ({r['series']})" for r in summary.get("base_model_per_level", [])
        ),
        "model choice": summary.get("model_choice"),
        "reconciliation": f"{', '.join(summary.get('reconciliation', []))}; published"
        f" {summary.get('published_method')}",
        "interval calibration": summary.get("interval_calibration"),
        "versions": ", ".join(f"{k} {v}" for k, v in manifest.get("versions", {}).items()),
    }
    if said := order_lines_said(summary.get("order_lines")):
        items["order lines"] = said
    timings = pl.DataFrame(manifest["timings"]) if manifest.get("timings") else pl.DataFrame()
    return definition_list(items) + table_html(timings, 2, "stages")
