"""`forecasting init` on order lines (forecasting.data.line_profile): the real Online Retail II lines are told apart
from per-period rows, and the order-lines source, the cancellations prefix and the codes that are not products are
proposed."""

from __future__ import annotations

import duckdb
import polars as pl

from forecasting import onboarding
from forecasting.data import profile as profiling
from forecasting.job.common import project_root
from forecasting.job.errors import InputError
from forecasting.job.loading import load_job

FILE = project_root() / "data" / "online-retail" / "online_retail_2009_2010.parquet"


def test_init_proposes_the_order_lines_source_and_its_rules(tmp_path):
    """`forecasting init` on the real lines: order lines found (an invoice column, timestamps, returns), the
    cancellations prefix and the codes that are not products proposed, and the job it writes loads. Its gate no
    longer refuses the lines as duplicates or negatives (short series are another matter: issue 35's second half)."""
    target = tmp_path / "retail.yaml"
    try:
        made = onboarding.onboard(str(FILE), target)
        gate = made.gate
    except InputError as exc:
        gate = str(exc)
    assert "duplicate keys" not in gate and "negative sales" not in gate and "missing periods" not in gate
    written = load_job(str(target))
    lines = written.source.order_lines
    assert written.freq == "week" and written.source.sales.path == str(FILE)
    assert written.hierarchy.columns == ["country", "stock_code"]
    assert (lines.order_id, lines.price, lines.returns, lines.exclude_orders_matching) == (
        "invoice",
        "price",
        "demand",
        "^C",
    )
    patterns = lines.not_products["stock_code"]
    assert patterns[0] == "[^0-9]*" and "ADJUST.*" in patterns and "gift_.*" in patterns
    text = target.read_text()
    assert "# not products: 28 stock_code values: ADJUST, ADJUST2, AMAZONFEE, B, BANK CHARGES" in text
    found = profiling.profile(profiling.source_for(str(FILE)))
    excluded = set(found.lines.not_product_values["stock_code"])
    assert {"POST", "DOT", "M", "BANK CHARGES", "AMAZONFEE", "ADJUST"} <= excluded
    # every value excluded is a code without a digit or one named like a fee, test or voucher; no product code
    with duckdb.connect() as con:
        con.execute("SET VARIABLE f = ?", [str(FILE)])
        described = dict(
            con.execute(
                "SELECT stock_code, any_value(description) FROM read_parquet(getvariable('f')) "
                "WHERE list_contains(?, stock_code) GROUP BY 1",
                [sorted(excluded)],
            ).fetchall()
        )
    assert not [code for code in excluded if code[:1].isdigit()]
    assert described["POST"] == "POSTAGE" and described["gift_0001_10"].startswith("Dotcomgiftshop Gift Voucher")


def test_init_tells_order_lines_by_their_times_of_day_without_an_invoice_column(tmp_path):
    """The real lines as a CSV without their invoice, price and returns: the times of day still say order lines."""
    path = tmp_path / "lines.csv"
    pl.read_parquet(FILE).filter(pl.col("quantity") > 0).drop("invoice", "price").head(20_000).write_csv(path)
    found = profiling.profile(profiling.source_for(str(path)))
    assert found.lines is not None and (found.lines.order_id, found.lines.price, found.lines.cancel_pattern) == (
        "",
        "",
        "",
    )
    assert found.keys == ["country", "stock_code"] and found.freq == "week"
    # a file of one row per series and week is not order lines: the bundled weekly flights
    flights = profiling.profile(profiling.source_for(str(project_root() / "data/nycflights/nycflights_weekly.parquet")))
    assert flights.lines is None
