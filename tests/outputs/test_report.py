"""The run report (forecasting/outputs/report.py) on real slice runs, and rendered in a real headless Chromium: every
chart drew its traces, the page logged nothing to the console, and a screenshot was taken."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import polars as pl
import pytest
import yaml
from support import unavailable
from typer.testing import CliRunner

from forecasting import pipeline
from forecasting.cli import app
from forecasting.outputs import runs as outputs
from forecasting.outputs.report import REPORT, build_report, write_report

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHARTS = 1 + 2 + 2 + 5 + 2  # total, 2 regions, 2 warehouses, 5 top SKUs, staffing for 2 warehouses
# Drivers (forecasting/outputs/report_drivers.py): per level a bar chart and its top 2 series' stacked charts
# (the total has one series).
DRIVER_CHARTS = (1 + 1) + (1 + 2) + (1 + 2) + (1 + 2)


def plot_data(page: str, div_id: str) -> list[dict]:
    """The traces one figure was given (plotly.io.to_html writes them as JSON in its Plotly.newPlot call)."""
    match = re.search(r'Plotly\.newPlot\(\s*"' + re.escape(div_id) + r'",\s*(\[.*?\]),\s*\{', page, re.S)
    assert match, div_id
    return json.loads(match.group(1))


@pytest.fixture(scope="module")
def report(planner_runs):
    job, _, after = planner_runs
    path = write_report(job, history=pipeline.history)
    return job, after, path, path.read_text()


def test_report_is_written_atomically_into_the_run_folder(report):
    job, after, path, page = report
    assert path == outputs.run_dir(job) / REPORT  # through the `latest` link into .runs/<id>
    assert path.parent == after.run_dir.resolve()
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []  # no temp file left
    assert len(page) > 4_000_000  # plotly.js itself is in the page


def test_report_is_self_contained(report):
    *_, page = report
    assert not re.search(r"<script[^>]*\bsrc=", page)
    assert not re.search(r"<link[^>]*\bhref=", page)
    assert "cdn.plot.ly" not in page.split("</script>", 1)[1]  # after the embedded plotly.js: no CDN reference


def test_fan_charts_show_history_mean_and_bands_per_level(report, planner_runs):
    job, _, after = planner_runs
    page = report[3]
    forecasts = pl.read_parquet(after.run_dir / "reconciled_forecasts.parquet").filter(pl.col("published"))
    history = pipeline.aggregate(pipeline.validate(pipeline.load(job, after.as_of), job), job).Y_df
    for div, uid in (("fan-total-0", "total"), ("fan-warehouse-0", None), ("fan-region-1", None)):
        traces = {t.get("name"): t for t in plot_data(page, div)}
        assert {"history", "forecast (mean)", "80 %", "95 %"} <= set(traces)
        title = re.search(r'Plotly\.newPlot\(\s*"' + div + r'".*?"title":\{"text":"([^"]+)"', page, re.S).group(1)
        uid = uid or json.loads(f'"{title}"').split(": ", 1)[1]  # plotly writes "/" as \\u002f
        expected = forecasts.filter(pl.col("unique_id") == uid).sort("ds")
        assert traces["forecast (mean)"]["y"] == pytest.approx(expected["mean"].to_list())
        assert traces["80 %"]["y"] == pytest.approx(expected["lo_80"].to_list())
        past = history.filter(pl.col("unique_id") == uid).sort("ds")
        assert traces["history"]["y"][-1] == pytest.approx(past["y"][-1])
        assert traces["history"]["x"][-1] == past["ds"][-1].isoformat() == "2016-03-01"


def test_driver_charts_stack_to_the_published_forecast(report, planner_runs):
    """The total's stacked drivers per period sum to its published forecast, and the level bars to its sum."""
    job, _, after = planner_runs
    page = report[3]
    total = pl.read_parquet(after.run_dir / "reconciled_forecasts.parquet").filter(
        pl.col("published") & (pl.col("unique_id") == "total")
    )
    traces = plot_data(page, "drivers-total-0")
    bars = [t for t in traces if t["type"] == "bar"]
    line = next(t for t in traces if t["type"] == "scatter")
    assert len(bars) >= 5 and {"reconciliation", "recent level"} <= {t["name"] for t in bars}
    stacked = [sum(values) for values in zip(*(t["y"] for t in bars), strict=True)]
    assert stacked == pytest.approx(total.sort("ds")["mean"].to_list(), rel=1e-9)
    assert line["y"] == pytest.approx(stacked, rel=1e-9)
    level = {t["name"]: sum(t["x"]) for t in plot_data(page, "drivers-total")}
    assert level["bottom series summed + reconciliation"] == pytest.approx(total["mean"].sum(), rel=1e-9)


def test_top_skus_staffing_accuracy_and_warnings(report, planner_runs):
    job, _, after = planner_runs
    page = report[3]
    sku = pl.read_parquet(after.run_dir / "reconciled_forecasts.parquet").filter(
        pl.col("published") & (pl.col("level") == "sku")
    )
    biggest = sku.group_by("unique_id").agg(pl.col("mean").sum()).sort("mean", descending=True)["unique_id"][0]
    volume = page.split("by forecast volume", 1)[1].split("</table>", 1)[0]
    assert f"<td>{biggest}</td>" in re.search(r"<tbody><tr>(.*?)</tr>", volume).group(1)
    assert biggest.replace("/", "\\u002f") in page.split('"fan-top-0"', 1)[1].split('"fan-top-1"', 1)[0]
    bt = pl.read_parquet(outputs.run_dir(job, None, "backtests") / "backtest_reconciled.parquet")
    worst = (
        bt.filter(pl.col("published") & (pl.col("level") == "sku"))
        .group_by("sku", "warehouse")
        .agg((pl.col("y") - pl.col("mean")).abs().sum().alias("e"))
        .sort("e", descending=True)
        .row(0)
    )
    errors = page.split("by backtest error", 1)[1].split("</table>", 1)[0]
    first_row = re.search(r"<tbody><tr>(.*?)</tr>", errors).group(1)
    assert worst[0] in first_row and worst[1] in first_row and f"{worst[2]:,.2f}" in first_row
    staff = {t["name"]: t["y"] for t in plot_data(page, "staff-0") if t.get("name") in ("p50", "p80", "p95")}
    assert set(staff) == {"p50", "p80", "p95"}
    assert "MinTrace_wls_struct" in page.split("Backtest accuracy per level and model", 1)[1]
    assert "2016-04-01 (24/30 days)" in page.split("Data-quality warnings", 1)[1].split("<h2>", 1)[0]
    assert after.run_dir.resolve().name in page  # run id in the metadata


def test_report_without_a_backtest_says_so(slice_run):
    job, result = slice_run
    page = build_report(job, result.run_dir, pipeline.history, top=3)
    assert "No backtest is published for this job" in page
    assert page.count("<tr>") > 3


def test_cli_report_for_an_older_run(planner_runs, tmp_path):
    job, before, _ = planner_runs
    job_file = tmp_path / "job.yaml"
    job_file.write_text(yaml.safe_dump(job.model_dump(mode="json")))
    out = CliRunner().invoke(app, ["report", "--job", str(job_file), "--run", "2016-02-29", "--top", "3"])
    assert out.exit_code == 0, out.output
    path = Path(out.output.split("report: ", 1)[1].strip())
    assert path == before.run_dir.resolve() / REPORT and "run as of 2016-02-29" in path.read_text()
    missing = CliRunner().invoke(app, ["report", "--job", str(job_file), "--run", "2015-01-31"])
    assert missing.exit_code == 2 and "no published run 2015-01-31" in missing.output


# --- a real browser ----------------------------------------------------------------------------------------------


def browser() -> str | None:
    return next((found for name in BROWSERS if (found := shutil.which(name))), None)


def headless(binary: str, tmp: Path, url: str, *args: str) -> subprocess.CompletedProcess:
    """Chromium in headless mode with its own profile, the console logged to stderr, and virtual time long enough
    for plotly to draw every chart before the DOM is dumped or the screenshot taken."""
    command = [
        binary, "--headless", "--disable-gpu", "--no-first-run", "--hide-scrollbars", f"--user-data-dir={tmp}",
        "--enable-logging=stderr", "--v=0", "--virtual-time-budget=20000", *args, url,
    ]  # fmt: skip
    if os.geteuid() == 0:
        command.insert(1, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
    return subprocess.run(command, capture_output=True, text=True, timeout=180)


def console_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


@pytest.fixture(scope="module")
def chromium() -> str:
    found = browser()
    if found is None:
        unavailable("no chromium binary on PATH (apt-get install chromium)")
    return found


@pytest.mark.services
def test_console_errors_are_seen(chromium, tmp_path):
    """The check below can fail: a script error on a page shows up as a console line."""
    page = tmp_path / "broken.html"
    page.write_text("<html><body><script>console.error('said'); notDefined();</script></body></html>")
    lines = console_lines(headless(chromium, tmp_path / "profile", page.as_uri(), "--dump-dom").stderr)
    assert any("notDefined" in line for line in lines) and any("said" in line for line in lines)


@pytest.mark.services
def test_report_renders_in_chromium(chromium, report, tmp_path):
    *_, path, _ = report
    dom = headless(chromium, tmp_path / "dom", path.as_uri(), "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert console_lines(dom.stderr) == []
    divs = re.split(r'(<div id="[^"]+" class="plotly-graph-div)', dom.stdout)[1:]
    pairs = zip(divs[::2], divs[1::2], strict=True)
    drawn = {re.search(r'id="([^"]+)"', head).group(1): body for head, body in pairs}
    charts = [chart for div_id, chart in drawn.items() if not div_id.startswith("drivers-")]
    assert len(charts) == CHARTS
    drivers = {div_id: chart for div_id, chart in drawn.items() if div_id.startswith("drivers-")}
    assert len(drivers) == DRIVER_CHARTS
    for div_id, chart in drivers.items():
        assert 'class="main-svg"' in chart and 'class="trace bars"' in chart, div_id  # plotly drew the bars
        bars = re.findall(r'<g class="point"><path d="(M[^"]+)"', chart)
        assert bars and any(re.search(r"V-?[\d.]+H", d) or re.search(r"H-?[\d.]+V", d) for d in bars), div_id
        if re.fullmatch(r"drivers-.+-\d", div_id):  # a stacked chart: the forecast line over the bars
            assert re.search(r'class="js-line"[^>]*\sd="M[^"]*L', chart), div_id
    for chart in charts:
        assert 'class="main-svg"' in chart  # plotly drew the figure
        lines = re.findall(r'class="js-line"[^>]*\sd="(M[^"]+)"', chart)
        traces = [d for d in lines if not re.fullmatch(r"M5,-?[\d.]+h30", d)]  # not the legend's swatches
        assert traces and all(re.search(r"\d[LH]-?\d", d) for d in traces)  # each trace a path through points
    fills = re.findall(r'class="js-fill"[^>]*\sd="(M[^"]+)"', dom.stdout)
    assert len(fills) >= 2 * 10  # 80/95 bands of the 10 fan charts

    shot_path = tmp_path / "report.png"
    shot = headless(chromium, tmp_path / "shot", path.as_uri(), f"--screenshot={shot_path}", "--window-size=1400,3000")
    assert shot.returncode == 0 and console_lines(shot.stderr) == []
    png = shot_path.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) == (1400, 3000)
    assert len(png) > 100_000  # charts, not a blank page (a blank 1400 x 3000 PNG is a few kB)
