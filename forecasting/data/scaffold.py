"""A job file for a stranger's data (`forecasting init`): from a profile (forecasting.data.profile) to a commented
YAML job that runs as it is, and the reasons for every choice.

What it decides and why:
- hierarchy: the keys top to bottom, nesting from functional dependencies, and one level per set of keys closed
  under nesting (a tree gives its path, crossed keys their grouped combinations);
- horizon and season from the frequency, cut to what the history holds;
- models a series of the kept length can fit, with their intervals, in the first backtest window too;
- a SQL source (format sql) that leaves out rows the gate would refuse or that would mislead the models: no quantity,
  subtotals, all-zero series and series too short for the models, with every value bound;
- no staffing (labour standards are the user's to state).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date
from itertools import product
from pathlib import Path

import yaml

from forecasting.data.profile import Profile, periods_between
from forecasting.job.loading import parse_job
from forecasting.job.schema import JobSpec

SEASON = {"day": 7, "week": 52, "month": 12, "quarter": 4}
HORIZON = {"day": 28, "week": 13, "month": 6, "quarter": 4}
RESERVED = {"unique_id", "level", "ds", "y", "total", "date", "quantity", "week", "price"}
MAX_LEVELS = 16
MAX_WINDOWS = 6
LIGHTGBM_SERIES = 30  # a global model pays from this many bottom series on


@dataclass
class Draft:
    """The job as data, the YAML text and what was decided, for the printed summary."""

    spec: JobSpec
    text: str
    decisions: list[str] = field(default_factory=list)
    left_out: dict[str, int] = field(default_factory=dict)


def logical(name: str) -> str:
    """A column name as a hierarchy key: lower case, letters, digits and _, not a reserved word."""
    text = re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_") or "key"
    text = f"k_{text}" if text[0].isdigit() else text
    return f"{text}_key" if text in RESERVED else text


def job_name(path: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(path).stem).strip("-.") or "job"


def levels_of(keys: list[str], parents: dict[str, str]) -> dict[str, list[str]]:
    """One level per set of keys closed under nesting (a child only with its parent): a tree gives its path, crossed
    keys their combinations. More than MAX_LEVELS: total, each chain's prefixes, and the bottom."""
    children = {p: [c for c, q in parents.items() if q == p] for p in keys}
    roots = [k for k in keys if k not in parents]

    def chain(root: str) -> list[str]:
        path = [root]
        while len(children[path[-1]]) == 1:
            path.append(children[path[-1]][0])
        return path

    chains = [chain(r) for r in roots]
    covered = {k for c in chains for k in c}
    chains += [[k] for k in keys if k not in covered]  # a parent with two children: the children cross
    combos = [sum((c[:n] for c, n in zip(chains, sizes, strict=True)), []) for sizes in _sizes(chains)]
    if len(combos) > MAX_LEVELS:
        combos = [[]] + [c[:n] for c in chains for n in range(1, len(c) + 1)] + [list(keys)]
    levels: dict[str, list[str]] = {}
    for combo in sorted(combos, key=len):
        chosen = [k for k in keys if k in combo]
        deepest = [k for k in chosen if not any(parents.get(o) == k for o in chosen)]
        levels.setdefault("_".join(deepest) or "total", chosen)
    return levels


def _sizes(chains: list[list[str]]) -> list[tuple[int, ...]]:
    return list(product(*(range(len(c) + 1) for c in chains)))


def _needs(spec: JobSpec) -> int:
    return max(spec.minimum_history(m) for m in spec.models.bottom_models)


def _base(found: Profile, name: str, output_root: str, keys: dict[str, str], horizon: int, season: int) -> dict:
    columns = {logical_key: column for column, logical_key in keys.items()}
    columns |= {"date": found.date, "quantity": found.quantity}
    source = found.source.model_dump(exclude_defaults=True) | {"columns": columns}
    sources = {"sales": source} | ({"order_lines": _order_lines(found, keys)} if found.lines is not None else {})
    return {
        "name": name,
        "description": f"{found.label}: {found.quantity} per {' x '.join(keys)}, by {found.freq}",
        "freq": found.freq,
        "horizon": horizon,
        "season_length": season,
        "source": sources,
        "hierarchy": {
            "columns": list(keys.values()),
            "levels": levels_of(list(keys.values()), {keys[c]: keys[p] for c, p in found.parents.items()}),
            "nested": {keys[c]: keys[p] for c, p in found.parents.items()},
        },
        "output_root": output_root,
    }


def draft(found: Profile, name: str, output_root: str, horizon: int | None = None) -> Draft:
    """Decide the job for the profiled file (see the module docstring)."""
    decisions: list[str] = []
    keys = {column: logical(column) for column in found.keys}
    last = max(s["last"] for s in found.series) if found.series else found.last
    lengths = sorted(periods_between(s["first"], last, found.freq) for s in found.series)
    longest = lengths[-1] if lengths else 0
    wanted = horizon or HORIZON[found.freq]
    horizon = max(1, min(wanted, longest // 6))
    decisions.append(f"horizon {horizon} {found.freq}s" + ("" if horizon == wanted else f" (history: {longest})"))
    season = SEASON[found.freq]
    if longest < 2 * season + horizon:
        decisions.append(f"season_length 1: {longest} periods hold fewer than two seasons of {season}")
        season = 1
    raw = _base(found, name, output_root, keys, horizon, season)
    nonzero = [s for s in found.series if s["total"]]
    # Order lines have rows only in periods with sales: a series' periods run from its first to the last one.
    span = (lambda s: periods_between(s["first"], last, found.freq)) if found.lines else (lambda s: s["periods"])
    sparse = sum(s["nonzero"] < span(s) / 1.32 for s in nonzero)
    naive = "SeasonalNaive" if season > 1 else "Naive"
    options = [["AutoETS", naive, "LightGBM"], ["AutoETS", naive], [naive]]
    if len(nonzero) < LIGHTGBM_SERIES:
        options = options[1:]
    spec = None
    for bottom in options:
        models = {
            "aggregate_models": ["AutoETS", "AutoTheta", naive],
            "bottom_models": bottom + (["CrostonSBA"] if sparse else []),
            "intermittent_model": "CrostonSBA" if sparse else None,
            "lightgbm": _lightgbm(season),
        }
        spec = parse_job(raw | {"models": models}, origin="init draft")
        need = _needs(spec) + 2 * horizon  # two backtest windows: the nested plan has one earlier window
        if sum(n >= need for n in lengths) >= 0.8 * len(lengths) or bottom == options[-1]:
            break
    need = _needs(spec)
    kept = [n for n in lengths if n >= need + horizon]
    shortest = min(kept) if kept else need + horizon
    windows = max(1, min(MAX_WINDOWS, (shortest - horizon - need) // horizon + 1))
    decisions.append(
        f"bottom models {', '.join(spec.models.bottom_models)}: a series needs {need} periods, {need + horizon} with "
        f"one backtest window; {windows} backtest windows of {horizon} fit the shortest series kept ({shortest})"
    )
    if sparse:
        decisions.append(f"{sparse} intermittent series (sales in fewer than 1 of 1.32 periods): CrostonSBA for them")
    started_by = _started_by(last, found.freq, need + horizon)
    left_out = {
        "rows without a quantity": found.null_rows,
        "rows with a negative quantity": found.negative_rows,
        "all-zero series": len(found.series) - len(nonzero),
        f"series starting after {started_by} (shorter than {need + horizon} periods)": len(lengths) - len(kept),
    }
    left_out = {what: n for what, n in left_out.items() if n}
    redate = not found.freq_given and not found.aligned  # rows at their own frequency, dated inside their period
    if found.lines is not None:
        # Order lines are read as they are: the order-lines source sums them into periods, its rules leave out
        # returns, cancellations and lines that are not products, and a period with no line is 0 sales.
        left_out, redate = {}, False
        decisions.append(_lines_decision(found))
    if redate:
        decisions.append(f"each row stands for its whole {found.freq}: dated on the {found.freq}'s first day")
    data = raw | {
        "min_history": need,
        "zero_fill_gaps": bool(found.gaps) or found.lines is not None,
        "models": spec.models.model_dump(include={"aggregate_models", "bottom_models", "intermittent_model"})
        | {"lightgbm": _lightgbm(season)},
        "reconciliation": {"methods": ["BottomUp", "MinTrace", "MinTrace_ols"], "nonnegative": "clip"},
        "backtest": {"windows": windows},
    }
    if found.gaps and found.lines is None:
        decisions.append(f"zero_fill_gaps: {found.gaps} series miss periods between their first and last row")
    if (left_out or found.subtotals or redate) and found.source.format in ("parquet", "csv", "duckdb"):
        data["source"] = {"sales": _sql_source(found, keys, started_by, redate)}
    elif left_out or found.subtotals or redate:
        decisions.append("the rows below are not left out, nor redated: a SQL source reads files, not PostgreSQL")
    spec = parse_job(data, origin="init draft")
    return Draft(spec, render(data, found, decisions, left_out), decisions, left_out)


def _lightgbm(season: int) -> dict:
    lags = sorted({1, 2, 3} | ({season} if season > 3 else set()))
    return {"lags": lags, "rolling_windows": sorted({3} | ({season} if season > 3 else set()))}


def _started_by(last: date, freq: str, periods: int) -> date:
    """The latest first period a series may have and still hold `periods` periods up to `last`."""
    if freq in ("month", "quarter"):
        months = (periods - 1) * (3 if freq == "quarter" else 1)
        total = last.year * 12 + last.month - 1 - months
        return date(total // 12, total % 12 + 1, 1)
    from datetime import timedelta

    return last - timedelta(days=(periods - 1) * (7 if freq == "week" else 1))


def _order_lines(found: Profile, keys: dict[str, str]) -> dict:
    """The order-lines section: price and order columns, returns counted as demand, the rules init found."""
    lines = found.lines
    assert lines is not None
    section: dict[str, object] = {}
    if lines.price:
        section["price"] = lines.price
    if lines.order_id:
        section["order_id"] = lines.order_id
    section["returns"] = "demand"
    if lines.cancel_pattern:
        section["exclude_orders_matching"] = lines.cancel_pattern
    if lines.not_products:
        section["not_products"] = {keys[column]: patterns for column, patterns in lines.not_products.items()}
    return section


def _lines_decision(found: Profile) -> str:
    lines = found.lines
    assert lines is not None
    said = ["order lines summed per " + " x ".join(found.keys) + f" and {found.freq}", "returns: demand"]
    if lines.cancel_pattern:
        said.append(f"orders matching {lines.cancel_pattern!r} left out")
    if lines.not_products:
        said.append(f"{lines.not_product_lines} lines that are not products left out")
    return "; ".join(said) + " (each rule's lines are counted in the run summary)"


def _sql_source(found: Profile, keys: dict[str, str], started_by: date, redate: bool) -> dict:
    """One SELECT over the file that leaves out what the gate would refuse or what would mislead the models."""
    q = f'"{found.quantity}"'
    day = f'TRY_CAST("{found.date}" AS DATE)' if found.columns[found.date] == "VARCHAR" else f'"{found.date}"'
    partition = ", ".join(f'"{k}"' for k in keys)
    where = [f"{q} IS NOT NULL", f"{q} >= 0", f"{day} IS NOT NULL", *(f'"{k}" IS NOT NULL' for k in keys)]
    parameters: dict[str, object] = {"freq": found.freq, "started_by": started_by.isoformat()}
    for column, values in found.subtotals.items():
        parameters[f"subtotals_{keys[column]}"] = values
        where.append(f'NOT list_contains($subtotals_{keys[column]}, CAST("{column}" AS VARCHAR))')
    select = f'SELECT * REPLACE (CAST(date_trunc($freq, {day}) AS DATE) AS "{found.date}")' if redate else "SELECT *"
    query = (
        f"{select} FROM sales\nWHERE " + "\n  AND ".join(where) + f"\nQUALIFY sum(abs({q})) OVER (PARTITION BY "
        f"{partition}) > 0\n  AND min(date_trunc($freq, {day})) OVER (PARTITION BY {partition}) <= "
        "CAST($started_by AS DATE)\n"
    )
    table = found.source.model_dump(exclude_defaults=True)
    columns = {logical_key: column for column, logical_key in keys.items()}
    columns |= {"date": found.date, "quantity": found.quantity}
    return {"format": "sql", "query": query, "tables": {"sales": table}, "parameters": parameters, "columns": columns}


def _flow(value: object) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)


def render(data: dict, found: Profile, decisions: list[str], left_out: dict[str, int]) -> str:
    """The job as commented YAML (each section says why), which loads back to the same job."""
    lines = [
        f"# Made by `forecasting init` from {found.label} ({found.rows} rows, {len(found.series)} series,",
        f"# {found.first} .. {found.last}). Every choice below is a default you may change; the reference of every",
        "# field is docs/job-reference.md (or `forecasting jobs schema`).",
    ]
    lines += [f"#   {reason}" for reason in found.reasons]
    for key in ("name", "description", "freq", "horizon", "season_length", "min_history", "zero_fill_gaps"):
        lines.append(f"{key}: {_flow(data[key])}")
    lines.append("source:")
    lines.append("  sales:")
    sales = data["source"]["sales"]
    if sales.get("format") == "sql":
        lines.append("    # Read through one SELECT over the file, confined (it can read that file and nothing else):")
        lines += [f"    #   left out: {n} {what}" for what, n in left_out.items()]
        lines += [f"    #   left out: subtotal rows {k} in {v}" for k, v in found.subtotals.items()]
        lines.append("    format: sql")
        lines.append("    query: |")
        lines += [f"      {line}" for line in sales["query"].rstrip().splitlines()]
        for key in ("tables", "parameters", "columns"):
            lines.append(f"    {key}: {_flow(sales[key])}")
    else:
        lines += [f"    {key}: {_flow(value)}" for key, value in sales.items()]
    if "order_lines" in data["source"]:
        lines += _render_order_lines(data["source"]["order_lines"], found)
    lines.append(
        "# Keys top to bottom; nested: child -> parent as found in the data (each child value has one parent)."
    )
    lines.append("hierarchy:")
    for key in ("columns", "nested"):
        lines.append(f"  {key}: {_flow(data['hierarchy'][key])}")
    lines.append("  levels:")
    lines += [f"    {name}: {_flow(cols)}" for name, cols in data["hierarchy"]["levels"].items()]
    lines += [f"# {decision}" for decision in decisions]
    lines.append(f"models: {_flow(data['models'])}")
    lines.append(
        "# MinTrace (wls_struct) published unless the backtest finds another clearly better; never harm: a level"
    )
    lines.append("# where it was worse than Base publishes Base or BottomUp (docs/backtests.md).")
    lines.append(f"reconciliation: {_flow(data['reconciliation'])}")
    lines.append(f"backtest: {_flow(data['backtest'])}")
    lines.append("# No labour standards: this job has no staffing plan (see docs/staffing.md to add one).")
    lines.append(f"output_root: {_flow(data['output_root'])}")
    text = "\n".join(lines) + "\n"
    assert yaml.safe_load(text) == json.loads(json.dumps(data, default=str)), "the rendered job differs from the draft"
    return text


def _render_order_lines(section: dict, found: Profile) -> list[str]:
    """The order-lines section with a comment per rule: what it is for and which values it matched."""
    lines = [
        "  # Order lines, summed into periods by these rules (docs/jobs.md#order-lines). returns: demand counts",
        "  # only lines with a positive quantity (net subtracts returns); the run summary counts each rule's lines.",
        "  order_lines:",
    ]
    for key, value in section.items():
        if key == "not_products" and found.lines is not None:
            for column, values in found.lines.not_product_values.items():
                lines.append(f"    # not products: {len(values)} {column} values: {', '.join(values)}")
        if key == "exclude_orders_matching":
            lines.append("    # orders whose id starts so are (nearly) all negative: cancellations")
        lines.append(f"    {key}: {_flow(value)}")
    return lines
