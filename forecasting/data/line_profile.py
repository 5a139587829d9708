"""Whether a stranger's file holds order lines, and the rules to propose for them (`forecasting init`): found in
DuckDB SQL over the profiled view, every value bound, column names quoted from the file's own DESCRIBE.

Order lines are told by an order (invoice) column with several lines per order, or by timestamps with a time of
day (rows per series and period are dated, not timed). Then: lines whose order id starts with a prefix that nearly
only negative lines carry are cancellations (Online Retail's C...); when nearly every value of the product key is a
code holding a digit, the codes without a digit (POST, DOT, M, BANK CHARGES, AMAZONFEE, ADJUST) and the codes named
like postage, fees, adjustments, tests or vouchers are lines that are not products; a numeric column named price is
the unit price.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import duckdb

NUMERIC = re.compile(r"^U?(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|FLOAT|DOUBLE|DECIMAL)")
ORDER_NAME = re.compile(r"invoice|order|receipt|transaction|basket|ticket", re.IGNORECASE)
PRICE_NAME = re.compile(r"price", re.IGNORECASE)
# Columns of an order line that describe it but do not group it into series: who ordered, what the product is called.
NOT_KEY_NAME = re.compile(r"customer|client|user|account|email|buyer|desc|^name$|title|comment|note", re.IGNORECASE)
NON_PRODUCT_WORDS = re.compile(
    r"post|carriage|fee|charge|adjust|test|gift|voucher|discount|sample|manual|shipping|delivery|freight",
    re.IGNORECASE,
)
CODES = 0.9  # share of a key's values holding a digit for its values to be codes
CANCELLED = 0.99  # share of an order prefix's lines that are negative for it to mark cancellations
NO_DIGIT = "[^0-9]*"


@dataclass
class LineShape:
    """What makes the file order lines, and what init proposes for them."""

    order_id: str = ""
    price: str = ""
    cancel_pattern: str = ""
    not_products: dict[str, list[str]] = field(default_factory=dict)  # key column -> RE2 patterns (full match)
    not_product_values: dict[str, list[str]] = field(default_factory=dict)  # key column -> the values they match
    not_product_lines: int = 0
    lines_per_key_period: float = 0.0
    reasons: list[str] = field(default_factory=list)


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def re2_literal(text: str) -> str:
    """`text` as an RE2 pattern matching itself: every character but letters, digits and _ escaped."""
    return "".join(c if c.isalnum() or c == "_" else "\\" + c for c in text)


def detect(
    con: duckdb.DuckDBPyConnection, table: str, columns: dict[str, str], date: str, quantity: str, rows: int
) -> LineShape | None:
    """The order-line shape of the file, or None when it holds one row per series and period."""
    shape = LineShape()
    for name, kind in columns.items():
        if name in (date, quantity) or not ORDER_NAME.search(name) or not (kind == "VARCHAR" or NUMERIC.match(kind)):
            continue
        orders = con.execute(f"SELECT count(DISTINCT {q(name)}) FROM {table}").fetchone()[0]
        if orders and rows / orders >= 1.5:
            shape.order_id = name
            shape.reasons.append(f"order lines: {name!r} holds {orders} orders of {rows / orders:.1f} lines on average")
            break
    timed = 0.0
    if columns[date].startswith("TIMESTAMP"):
        timed = (
            con.execute(
                f"SELECT avg(CASE WHEN CAST({q(date)} AS TIME) <> TIME '00:00:00' THEN 1 ELSE 0 END) FROM {table}"
            ).fetchone()[0]
            or 0.0
        )
    negative = con.execute(f"SELECT count(*) FROM {table} WHERE {q(quantity)} < 0").fetchone()[0]
    if not shape.order_id and timed <= 0.5:
        return None  # per-period rows are dated, not timed: a time of day is when a line was ordered
    if timed > 0.5:
        shape.reasons.append(f"order lines: {date!r} holds times of day ({timed:.0%} of rows not at midnight)")
    if negative:
        shape.reasons.append(f"order lines: {negative} lines with a negative quantity (returns, cancellations)")
    prices = [n for n, k in columns.items() if NUMERIC.match(k) and PRICE_NAME.search(n) and n != quantity]
    if prices:
        shape.price = prices[0]
        shape.reasons.append(f"unit price {shape.price!r}: its name says so; its weekly average is a LightGBM feature")
    if shape.order_id and negative:
        _cancellations(con, table, shape, quantity, negative)
    return shape


def _cancellations(con: duckdb.DuckDBPyConnection, table: str, shape: LineShape, quantity: str, negative: int) -> None:
    """An order-id prefix (the text before its first digit) that nearly only negative lines carry."""
    found = con.execute(
        f"SELECT regexp_extract(CAST({q(shape.order_id)} AS VARCHAR), '^[^0-9]*') AS prefix, "
        f"count(*) FILTER (WHERE {q(quantity)} < 0) AS neg, count(*) AS n FROM {table} GROUP BY 1 "
        "HAVING prefix <> '' AND neg >= ? * n AND neg >= 0.1 * ? ORDER BY neg DESC LIMIT 1",
        [CANCELLED, negative],
    ).fetchall()
    if found:
        prefix, neg, n = found[0]
        shape.cancel_pattern = "^" + re2_literal(prefix)
        shape.reasons.append(
            f"cancellations: orders numbered {prefix}... ({neg} of their {n} lines negative, {neg / negative:.0%} of "
            "the negative lines)"
        )


def not_products(con: duckdb.DuckDBPyConnection, table: str, shape: LineShape, key: str) -> None:
    """When nearly every value of the product key `key` holds a digit (codes), propose as not products the values
    without a digit, and the coded values named like postage, fees, adjustments or vouchers (by their text before
    the first digit)."""
    values = [
        row[0]
        for row in con.execute(
            f"SELECT DISTINCT CAST({q(key)} AS VARCHAR) FROM {table} WHERE {q(key)} IS NOT NULL ORDER BY 1"
        ).fetchall()
    ]
    coded = [v for v in values if re.search(r"[0-9]", v)]
    if not values or len(coded) < CODES * len(values):
        return  # not codes: names without digits may well be products
    patterns = [NO_DIGIT] if len(coded) < len(values) else []
    for value in coded:
        prefix = re.split(r"[0-9]", value)[0]
        if prefix and NON_PRODUCT_WORDS.search(prefix) and re2_literal(prefix) + ".*" not in patterns:
            patterns.append(re2_literal(prefix) + ".*")
    if not patterns:
        return
    # The patterns are plain enough (a class, escaped literals, .*) to mean the same in RE2 and Python's re.
    matched = [v for v in values if any(re.fullmatch(p, v) for p in patterns)]
    shape.not_products[key] = patterns
    shape.not_product_values[key] = matched
    shape.not_product_lines = con.execute(
        f"SELECT count(*) FROM {table} WHERE list_contains(?, CAST({q(key)} AS VARCHAR))", [matched]
    ).fetchone()[0]
    shown = ", ".join(matched[:12]) + (", ..." if len(matched) > 12 else "")
    shape.reasons.append(
        f"not products: {len(matched)} {key} values ({shown}; {shape.not_product_lines} lines): "
        f"{len(coded)} of {len(values)} values are codes with a digit"
    )


def lines_per_key_period(con: duckdb.DuckDBPyConnection, table: str, keys: list[str], day: str, freq: str) -> float:
    """Lines per key and period on average: above 1, the gate would have refused them as duplicate keys."""
    group = ", ".join([*(q(k) for k in keys), f"date_trunc(?, {day})"])
    return con.execute(f"SELECT count(*) / count(DISTINCT ({group})) FROM {table}", [freq]).fetchone()[0] or 0.0
