"""A sales source that holds order lines (`source.order_lines`): one row per line of an order, several per product and
day, returns and cancellations as negative quantities, and lines that are not products (postage, fees). The job says
which lines count; forecasting.data.order_lines sums them into the job's periods in DuckDB before the gate."""

from __future__ import annotations

from typing import Literal

import duckdb
from pydantic import Field, field_validator

from forecasting.job.common import Strict

RETURNS_DEFAULT_REASON = (
    "demand (the default): only lines with a positive quantity count, in the period they were ordered. A forecast "
    "of what customers ask for is what stock and staff are planned on; a return is booked weeks after its sale and "
    "a cancellation undoes an order that was still asked for, so subtracting them would understate demand in the "
    "periods they land in. net: every line counts, returns and cancellations subtracted in the period they are "
    "booked (what was sold and kept); a period whose returns exceed its sales counts as 0, and a series' returns "
    "before its first sale are left out. Either way each rule's removed lines and quantity are counted in the run "
    "summary and the manifest"
)


_CHECKER: duckdb.DuckDBPyConnection | None = None  # an in-memory connection that only compiles patterns


def regex_problem(pattern: str) -> str | None:
    """Why DuckDB (RE2) cannot use `pattern` as a regular expression, or None."""
    if not pattern or "\x00" in pattern:
        return "it is empty or holds a NUL character"
    global _CHECKER
    if _CHECKER is None:
        _CHECKER = duckdb.connect()
    try:
        with _CHECKER.cursor() as con:
            con.execute("SELECT regexp_full_match('', ?)", [pattern]).fetchall()
    except duckdb.Error as exc:
        return " ".join(str(exc).split())
    return None


class OrderLinesSpec(Strict):
    """`source.sales` holds order lines: `columns.date` is each line's date or timestamp (cut into days in
    `source.timezone`), `columns.quantity` its quantity (negative for returns and cancellations), the keys its
    product and place. The lines are summed into the job's periods in DuckDB, after the rules below, before the
    data-quality gate; a period with no line is 0 sales from each series' first sale on (never before it)."""

    price: str | None = Field(
        None,
        description="column of each line's unit price: the period's average price (weighted by the quantity of the "
        "positive lines counted, prices above 0) becomes the price feature of the bottom LightGBM; a period without a "
        "sale and the horizon carry the last average forward",
    )
    order_id: str | None = Field(
        None, description="column of the order (invoice) id each line belongs to; needed by exclude_orders_matching"
    )
    returns: Literal["demand", "net"] = Field("demand", description=RETURNS_DEFAULT_REASON)
    exclude_orders_matching: str | None = Field(
        None,
        description="a regular expression (RE2, as DuckDB's regexp_matches; anchor it with ^): lines whose order id "
        "matches are left out, e.g. '^C' for invoices numbered C... that cancel orders. Default: none",
    )
    not_products: dict[str, list[str]] = Field(
        default_factory=dict,
        description="hierarchy key -> regular expressions (RE2) a whole key value matches when the line is not a "
        "product (postage, fees, manual adjustments, bank charges): such lines are left out, each pattern counted on "
        "its own. E.g. {sku: ['[^0-9]*', 'C[0-9]']}: codes without a digit, carriage codes. Default: none",
    )

    @field_validator("price", "order_id")
    @classmethod
    def _column(cls, value: str | None) -> str | None:
        if value is not None and (not value or "\x00" in value):
            raise ValueError("an order-lines column name is empty")
        return value

    @field_validator("exclude_orders_matching")
    @classmethod
    def _order_pattern(cls, value: str | None) -> str | None:
        if value is not None and (problem := regex_problem(value)):
            raise ValueError(f"exclude_orders_matching {value!r} is not a regular expression: {problem}")
        return value

    @field_validator("not_products")
    @classmethod
    def _product_patterns(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for key, patterns in value.items():
            if not patterns:
                raise ValueError(f"not_products.{key}: list at least one pattern")
            for pattern in patterns:
                if problem := regex_problem(pattern):
                    raise ValueError(f"not_products.{key} pattern {pattern!r} is not a regular expression: {problem}")
        return value

    def problems(self, keys: list[str], has_prices: bool, zero_fill_gaps: bool | None) -> list[str]:
        """What does not fit the rest of the job: unknown keys, a second price source, gaps refused."""
        unknown = [k for k in self.not_products if k not in keys]
        found = [f"order_lines.not_products names {k!r}, which is not a hierarchy key {keys}" for k in unknown]
        if self.exclude_orders_matching is not None and self.order_id is None:
            found.append("order_lines.exclude_orders_matching needs order_lines.order_id, the column it reads")
        if has_prices and self.price is not None:
            found.append("order_lines.price and source.prices are two price sources: keep one")
        if zero_fill_gaps is False:
            found.append(
                "zero_fill_gaps: false does not fit order lines: a period with no line is a period with no sales"
            )
        return found
