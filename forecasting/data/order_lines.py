"""Order lines into the job's periods, in DuckDB, before the data-quality gate (`source.order_lines`).

forecasting.data.sources defines the view raw_lines over the file (every line, its day in the data's time zone).
Here the lines are checked (a line the gate cannot read is one error naming file, column and rows), each line is
given the first of the job's rules that leaves it out (not a product, a cancelled order, a return under `demand`),
and what counts is summed per series and period (sql/order_lines.sql) into the table raw_sales: one row per series
and period from its first sale on, which the gate and sql/sales_history.sql read as they read any source. Periods
with no line are filled with 0 by the gate (zero_fill_gaps is always on for order lines). Every rule's removed lines
and quantity are counted for the run summary and the manifest.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import duckdb

from forecasting.data.quality import DATE_TYPES, EXAMPLES, NUMBER_TYPES, DataQualityError, Problem, check_table
from forecasting.data.sources import quote_identifier, sql_text
from forecasting.job.order_lines import OrderLinesSpec
from forecasting.job.schema import JobSpec


@dataclass(frozen=True)
class Rule:
    """One rule that leaves lines out, as the summary names it, with what it removed."""

    rule: str
    rows: int = 0
    quantity: float = 0.0
    rows_are: str = "lines"  # or "periods": series x period sums (returns: net)


def _rules(job: JobSpec, lines: OrderLinesSpec) -> list[tuple[str, str, dict]]:
    """(label, SQL condition on a line, bound values) per rule, in the order a line is attributed to them."""
    columns = job.source.sales.columns
    rules = []
    for key, patterns in lines.not_products.items():
        for i, pattern in enumerate(patterns):
            name = f"not_product_{job.hierarchy.columns.index(key)}_{i}"
            condition = f"regexp_full_match({quote_identifier(key)}, ${name})"
            rules.append((f"not a product: {columns[key]} matches {pattern!r}", condition, {name: pattern}))
    if lines.exclude_orders_matching is not None:
        label = f"cancelled or excluded order: {lines.order_id} matches {lines.exclude_orders_matching!r}"
        condition = "coalesce(regexp_matches(order_id, $orders), false)"
        rules.append((label, condition, {"orders": lines.exclude_orders_matching}))
    if lines.returns == "demand":
        label = f"return or cancellation: {columns['quantity']} not above 0 (returns: demand)"
        rules.append((label, "CAST(quantity AS DOUBLE) <= 0", {}))
    return rules


def check_lines(con: duckdb.DuckDBPyConnection, job: JobSpec, file: str) -> None:
    """Lines the sum cannot read: a date that is not a date, a quantity or price that is not a number, nulls.
    Reported as the file holds them (every line, not the per-period sums)."""
    cols, lines = job.source.sales.columns, job.source.order_lines
    assert lines is not None
    types = {row[0]: row[1] for row in con.execute("DESCRIBE SELECT * FROM raw_lines").fetchall()}
    wanted = {"ds_raw": (cols["date"], DATE_TYPES, "a date or timestamp")}
    wanted["quantity"] = (cols["quantity"], NUMBER_TYPES, "a number")
    if lines.price is not None:
        wanted["price"] = (lines.price, NUMBER_TYPES, "a number")
    problems: list[Problem | None] = []
    for alias, (column, allowed, what) in wanted.items():
        kind = types[alias]
        if kind != "VARCHAR" and not kind.startswith(allowed):
            examples = con.execute(f"SELECT * EXCLUDE (day) FROM raw_lines LIMIT {EXAMPLES}").fetchall()
            total = con.execute("SELECT count(*) FROM raw_lines").fetchone()[0]
            problems.append(Problem(file, column, f"column type {kind}, expected {what}", total, examples))
    if any(problems):
        raise DataQualityError([p for p in problems if p])
    number = "TRY_CAST(quantity AS DOUBLE)"
    checks = [(cols[k], "null values", f"{quote_identifier(k)} IS NULL") for k in job.hierarchy.columns]
    checks += [
        (cols["date"], "null values", "ds_raw IS NULL"),
        (cols["quantity"], "null values", "quantity IS NULL"),
        (cols["quantity"], "values that are not numbers", f"quantity IS NOT NULL AND {number} IS NULL"),
        (cols["quantity"], "values that are not finite (NaN or infinity)", f"NOT isfinite({number})"),
        (cols["date"], "values that are not dates", "ds_raw IS NOT NULL AND day IS NULL"),
    ]
    if lines.price is not None:
        priced = "price IS NOT NULL AND TRY_CAST(price AS DOUBLE) IS NULL"
        checks.append((lines.price, "values that are not numbers", priced))
    problems += [check_table(con, "raw_lines", file, column, what, where) for column, what, where in checks]
    if any(problems):
        raise DataQualityError([p for p in problems if p])


def prepare(con: duckdb.DuckDBPyConnection, job: JobSpec, file: str) -> dict:
    """Check the lines, apply the rules, and write raw_sales (one row per series and period from its first sale on)
    with the view raw_sales_unfiltered (every line, for the gate's filter checks). Returns what the summary reports:
    the lines read (all of the file's, whatever the as-of date), each rule's removed lines (or periods) and units,
    and the lines and units counted; the lines read are the lines removed plus the lines counted."""
    lines = job.source.order_lines
    assert lines is not None
    check_lines(con, job, file)
    rules = _rules(job, lines)
    keys = ", ".join(quote_identifier(k) for k in job.hierarchy.columns)
    case = " ".join(f"WHEN {condition} THEN {i}" for i, (_, condition, _) in enumerate(rules))
    rule = f"CASE {case} END" if rules else "CAST(NULL AS INTEGER)"
    price = "price" if lines.price is not None else "CAST(NULL AS DOUBLE)"
    order = "order_id" if lines.order_id is not None else "CAST(NULL AS VARCHAR)"
    params = {name: value for _, _, bound in rules for name, value in bound.items()}
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE order_lines_ruled AS SELECT {keys}, ds_raw, quantity, day, {price} AS price, "
        f"{order} AS order_id, {rule} AS rule FROM raw_lines",
        params,
    )
    con.execute(f"CREATE OR REPLACE TEMP TABLE order_line_periods AS {sql_text('order_lines')}", {"period": job.freq})
    removed = {
        row[0]: (row[1], row[2])
        for row in con.execute(
            "SELECT rule, count(*), coalesce(sum(CAST(quantity AS DOUBLE)), 0) FROM order_lines_ruled "
            "WHERE rule IS NOT NULL GROUP BY rule"
        ).fetchall()
    }
    counted = [Rule(label, *removed.get(i, (0, 0.0))) for i, (label, _, _) in enumerate(rules)]
    if lines.returns == "net":
        before, before_quantity, negative, added = con.execute(
            "SELECT coalesce(sum(lines) FILTER (WHERE first_sale IS NULL OR ds < first_sale), 0), "
            "coalesce(sum(quantity) FILTER (WHERE first_sale IS NULL OR ds < first_sale), 0), "
            "count(*) FILTER (WHERE ds >= first_sale AND quantity < 0), "
            "coalesce(sum(quantity) FILTER (WHERE ds >= first_sale AND quantity < 0), 0) FROM order_line_periods"
        ).fetchone()
        counted.append(Rule("returns before the series' first sale (returns: net)", before, before_quantity))
        what = "periods whose returns exceed their sales, counted as 0 (returns: net)"
        counted.append(Rule(what, negative, added, "periods"))
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE raw_sales AS SELECT {keys}, ds AS ds_raw, greatest(quantity, 0) AS quantity, "
        "ds AS day FROM order_line_periods WHERE ds >= first_sale"
    )
    con.execute("CREATE OR REPLACE TEMP VIEW raw_sales_unfiltered AS SELECT * FROM raw_lines_unfiltered")
    total, kept, quantity, series, periods = con.execute(
        "SELECT (SELECT count(*) FROM order_lines_ruled), (SELECT count(*) FROM order_lines_ruled WHERE rule IS NULL), "
        f"sum(quantity), count(DISTINCT ({keys})), count(*) FROM raw_sales"
    ).fetchone()
    if total and not periods:
        said = "; ".join(f"{r.rule}: {r.rows} lines" for r in counted if r.rows)
        column = job.source.sales.columns["quantity"]
        raise DataQualityError([Problem(file, column, f"no line counts after the rules ({said})", total, [])])
    return {
        "lines": total,
        "returns": lines.returns,
        "removed": [asdict(r) for r in counted],
        "lines_counted": kept - sum(r.rows for r in counted[len(rules) :] if r.rows_are == "lines"),
        "quantity_counted": float(quantity or 0.0),
        "series": series,
        "series_periods_with_lines": periods,
    }
