"""source.order_lines in the job schema: the bundled online-retail job, the defaults and what is refused."""

from __future__ import annotations

import pytest

from forecasting.job.loading import JobConfigError, load_job, parse_job
from forecasting.job.reference import markdown


def raw(**lines) -> dict:
    data = load_job("online-retail").model_dump(mode="json")
    data["source"]["order_lines"] = data["source"]["order_lines"] | lines
    return data


def test_the_bundled_job_reads_order_lines():
    job = load_job("online-retail")
    lines = job.source.order_lines
    assert job.freq == "week" and job.hierarchy.levels == {
        "total": [],
        "country": ["country"],
        "country_sku": ["country", "sku"],
    }
    assert (lines.price, lines.order_id, lines.returns, lines.exclude_orders_matching) == (
        "price",
        "invoice",
        "demand",
        "^C",
    )
    assert "[^0-9]*" in lines.not_products["sku"]
    assert job.zero_fill_gaps  # a week with no line is a week with no sales
    # price and order id are columns of the lines, not hierarchy keys
    assert job.hierarchy.columns == ["country", "sku"]


def test_defaults_count_demand_and_fill_empty_periods():
    data = raw()
    data["source"]["order_lines"] = {}
    del data["zero_fill_gaps"]
    job = parse_job(data)
    assert job.source.order_lines.returns == "demand" and job.zero_fill_gaps
    assert job.source.order_lines.not_products == {} and job.source.order_lines.exclude_orders_matching is None


def test_the_reference_states_and_reasons_the_default():
    text = markdown()
    row = next(line for line in text.splitlines() if line.startswith("| `source.order_lines.returns` "))
    assert '`"demand"`' in row and "what customers ask for" in row and "net:" in row


@pytest.mark.parametrize(
    ("lines", "says"),
    [
        ({"not_products": {"product": ["POST"]}}, "order_lines.not_products names 'product'"),
        ({"not_products": {"sku": ["(POST"]}}, "not_products.sku pattern '(POST' is not a regular expression"),
        ({"not_products": {"sku": []}}, "list at least one pattern"),
        ({"exclude_orders_matching": "^(?=C)"}, "exclude_orders_matching '^(?=C)' is not a regular expression"),
        ({"order_id": None}, "exclude_orders_matching needs order_lines.order_id"),
        ({"returns": "gross"}, "returns"),
        ({"price": ""}, "an order-lines column name is empty"),
    ],
)
def test_what_is_refused_is_named(lines, says):
    with pytest.raises(JobConfigError) as error:
        parse_job(raw(**lines))
    assert says in str(error.value)


def test_zero_fill_gaps_false_and_a_second_price_source_are_refused():
    data = raw()
    data["zero_fill_gaps"] = False
    with pytest.raises(JobConfigError, match="a period with no line is a period with no sales"):
        parse_job(data)
    data = raw()
    data["source"] |= {
        "prices": {"path": "data/m5/m5_sell_prices.parquet", "columns": {"sku": "item_id", "week": "w", "price": "p"}},
        "calendar": {"path": "data/m5/m5_calendar.parquet", "columns": {"date": "date", "week": "wm_yr_wk"}},
    }
    with pytest.raises(JobConfigError, match="two price sources"):
        parse_job(data)


def test_the_order_shaped_m5_job_reads_the_bundled_file_through_sql():
    job = load_job("m5-monthly-orders")
    monthly = load_job("m5-monthly")
    assert job.source.sales.format == "sql" and "min(month) FILTER (WHERE sales > 0)" in job.source.sales.query
    assert [t.path for t in job.source.sales.tables.values()] == [monthly.source.sales.path]
    # otherwise the same job, so that the two compare
    same = {"name", "description", "source"}
    assert job.model_dump(exclude=same) == monthly.model_dump(exclude=same)
    assert job.source.model_dump(exclude={"sales"}) == monthly.source.model_dump(exclude={"sales"})
