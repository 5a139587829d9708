from __future__ import annotations

import pytest

from forecasting.job.loading import JobConfigError, available_jobs, load_job, parse_job


def test_bundled_job_validates():
    job = load_job()
    assert job.name == "m5-monthly"
    assert job.freq == "month" and job.horizon == 3
    assert {80, 95} <= set(job.levels)
    assert "m5-monthly" in available_jobs()


def test_unknown_job_names_the_bundled_ones():
    with pytest.raises(JobConfigError, match="m5-monthly"):
        load_job("no-such-job")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"horizon": 0}, "horizon"),
        ({"freq": "hourly"}, "freq"),
        ({"name": "bad name; DROP TABLE x"}, "name"),
        ({"unknown_key": 1}, "unknown_key"),
        ({"staffing": {"minutes_per_unit": -1, "productive_hours_per_fte": 150}}, "staffing.minutes_per_unit"),
        ({"staffing": {"minutes_per_unit": 1, "productive_hours_per_fte": 150, "shrinkage": 1.0}}, "shrinkage"),
        ({"backtest": {"windows": 0}}, "backtest.windows"),
        ({"backtest": {"windows": 4, "step": 0}}, "backtest.step"),
    ],
)
def test_invalid_specs_name_the_field(change, field):
    raw = load_job().model_dump(mode="json") | change
    with pytest.raises(JobConfigError, match=field.replace(".", r"\.")):
        parse_job(raw)


def test_sales_source_must_map_every_column():
    raw = load_job().model_dump(mode="json")
    del raw["source"]["sales"]["columns"]["region"]
    with pytest.raises(JobConfigError, match="region"):
        parse_job(raw)


def test_primary_model_must_be_run_at_its_level():
    raw = load_job().model_dump(mode="json")
    raw["models"]["primary"]["sku"] = "AutoETS"
    with pytest.raises(JobConfigError, match="primary model 'AutoETS'"):
        parse_job(raw)


def test_every_bundled_job_validates():
    assert {"m5-monthly", "m5-daily-warehouse", "tourism"} <= set(available_jobs())
    tourism = load_job("tourism")
    assert tourism.hierarchy.bottom == "region_purpose" and tourism.staffing is None
    assert tourism.hierarchy.identity == ["region", "purpose"]  # state is implied by region
    daily = load_job("m5-daily-warehouse")
    assert daily.hierarchy.bottom == "warehouse" and daily.freq == "day" and daily.horizon == 28


def test_hierarchy_levels_are_ordered_top_to_bottom_whatever_the_file_order():
    raw = load_job("tourism").model_dump(mode="json")
    raw["hierarchy"]["levels"] = dict(reversed(list(raw["hierarchy"]["levels"].items())))
    raw["hierarchy"]["levels"]["region"] = ["region", "state"]
    job = parse_job(raw)
    assert job.hierarchy.names[0] == "total" and job.hierarchy.bottom == "region_purpose"
    assert job.hierarchy.levels["region"] == ["state", "region"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda h: h["levels"].update(extra=["aisle"]), "not hierarchy keys"),
        (lambda h: h["levels"].pop("sku"), "one level must group by all keys"),
        (lambda h: h["levels"].update(region=["warehouse", "region"]), "same keys as another level"),
        (lambda h: h.update(nested={"warehouse": "aisle"}), "both must be hierarchy keys"),
        (lambda h: h.update(columns=["region", "warehouse", "sku", "ds"]), "plain identifier other than"),
    ],
)
def test_invalid_hierarchies_are_refused(change, message):
    raw = load_job().model_dump(mode="json")
    change(raw["hierarchy"])
    with pytest.raises(JobConfigError, match=message):
        parse_job(raw)


def test_primary_defaults_to_the_mean_and_staffing_needs_a_warehouse_level():
    """A level the job file's `primary` leaves out gets the Mean of the models run there (no M5 name is a default);
    a named level must exist; staffing needs a warehouse level."""
    raw = load_job().model_dump(mode="json")
    raw["models"]["primary"] = {"sku": "LightGBM"}
    job = parse_job(raw)
    assert job.primary_models() == {"total": "Mean", "region": "Mean", "warehouse": "Mean", "sku": "LightGBM"}
    raw["models"]["primary"] = {"aisle": "LightGBM"}
    with pytest.raises(JobConfigError, match="models.primary names level 'aisle'"):
        parse_job(raw)
    raw = load_job("tourism").model_dump(mode="json")
    raw["staffing"] = load_job().model_dump(mode="json")["staffing"]
    with pytest.raises(JobConfigError, match="staffing needs a hierarchy level named 'warehouse'"):
        parse_job(raw)


def test_filters_must_name_hierarchy_keys():
    with pytest.raises(JobConfigError, match="filter on 'aisle'"):
        load_job(filters={"aisle": ["7"]})


@pytest.mark.parametrize("middle", ["sku", "aisle"])
def test_middle_out_needs_a_level_above_the_bottom(middle):
    raw = load_job().model_dump(mode="json")
    raw["reconciliation"]["middle_level"] = middle
    with pytest.raises(JobConfigError, match=f"middle_level '{middle}' is not a level above the bottom"):
        parse_job(raw)


@pytest.mark.parametrize("method", ["MiddleOut_BottomUp@sku", "MiddleOut_ols@aisle"])
def test_middle_out_methods_need_a_level_above_the_bottom(method):
    raw = load_job().model_dump(mode="json")
    raw["reconciliation"]["methods"].append(method)
    level = method.partition("@")[2]
    with pytest.raises(JobConfigError, match=f"{method}'.*'{level}' is not a level above the bottom"):
        parse_job(raw)


@pytest.mark.parametrize(
    ("method", "same_as"),
    [("MiddleOut_BottomUp@region", "MiddleOut_BottomUp"), ("MiddleOut_ols@total", "MiddleOut_BottomUp@total")],
)
def test_two_names_for_one_middle_out_reconciliation_are_refused(method, same_as):
    """The job's middle level is region; at the top level every upper method keeps the total's Base."""
    raw = load_job().model_dump(mode="json")
    raw["reconciliation"]["methods"].append(method)
    with pytest.raises(JobConfigError, match=f"'{same_as}' and '{method}' are the same reconciliation"):
        parse_job(raw)


def test_middle_out_needs_a_tree():
    raw = load_job("tourism").model_dump(mode="json")
    raw["reconciliation"]["methods"].append("MiddleOut_BottomUp@state")
    with pytest.raises(JobConfigError, match="middle-out needs a tree, but levels 'purpose' and 'state'"):
        parse_job(raw)


def test_middle_out_without_an_upper_takes_the_job_one():
    from forecasting.job.reconciliation import ReconcileSpec

    spec = ReconcileSpec(methods=["MiddleOut@warehouse"], middle_out_upper="ols", publish="MiddleOut@warehouse")
    assert spec.label("MiddleOut@warehouse") == "MiddleOut_ols@warehouse"


@pytest.mark.parametrize("method", ["MinTrace@region", "MiddleOut_median@region", "MiddleOut_BottomUp@"])
def test_unknown_reconciliation_methods_are_named(method):
    raw = load_job().model_dump(mode="json")
    raw["reconciliation"]["methods"].append(method)
    with pytest.raises(JobConfigError, match=f"unknown reconciliation method '{method}'"):
        parse_job(raw)


@pytest.mark.parametrize("value", ["qp", "clip", True, False])
def test_nonnegative_takes_qp_clip_or_a_boolean(value):
    raw = load_job().model_dump(mode="json")
    raw["reconciliation"]["nonnegative"] = value
    spec = parse_job(raw).reconciliation
    assert spec.nonnegative_method == {"qp": "qp", "clip": "clip", True: "qp", False: None}[value]


def test_unknown_nonnegative_method_is_refused():
    raw = load_job().model_dump(mode="json")
    raw["reconciliation"]["nonnegative"] = "round"
    with pytest.raises(JobConfigError, match=r"reconciliation\.nonnegative must be qp, clip, true \(= qp\) or false"):
        parse_job(raw)


def _set(raw: dict, path: str, value: object) -> dict:
    node = raw
    *parents, last = path.split(".")
    for key in parents:
        node = node[key]
    node[last] = value
    return raw


@pytest.mark.parametrize(
    ("path", "value", "says"),
    [
        ("horizon", True, "Input should be a valid integer"),  # was accepted as 1
        ("horizon", "3", "Input should be a valid integer"),
        ("horizon", 3.0, "Input should be a valid integer"),
        ("zero_fill_gaps", 1, "Input should be a valid boolean"),
        ("zero_fill_gaps", "yes", "Input should be a valid boolean"),
        ("seed", False, "Input should be a valid integer"),
        ("levels", [80, True], "Input should be a valid integer"),
        ("models.lightgbm.learning_rate", "0.1", "Input should be a valid number"),
        ("models.choose_from_backtest", "false", "Input should be a valid boolean"),
        ("staffing.samples", True, "Input should be a valid integer"),
        ("source.max_quantity", float("inf"), "Input should be a finite number"),
        ("source.observed_to", 20160424, "a date must be written YYYY-MM-DD"),
        ("source.allow_stale", "no", "Input should be a valid boolean"),
    ],
)
def test_numbers_booleans_and_dates_are_never_coerced(path, value, says):
    raw = _set(load_job().model_dump(), path, value)
    with pytest.raises(JobConfigError, match=f"{path.replace('.', '[.]')}[.0-9]*: .*{says}"):
        parse_job(raw)


def test_dates_come_as_dates_or_iso_text_and_ints_are_numbers_too():
    """JSON specs (Prefect parameters, model_dump_json) carry dates as text; an int is a valid float."""
    raw = load_job().model_dump(mode="json")
    raw["models"]["lightgbm"]["learning_rate"] = 1
    job = parse_job(raw)
    assert job.source.observed_to.isoformat() == "2016-04-24" and job.models.lightgbm.learning_rate == 1.0


def test_grains_must_nest_and_cover_the_day_horizon():
    """The bundled daily jobs name day -> week -> 4-week with at least 13 weeks; grains that do not nest are refused."""
    from forecasting.job.loading import load_job, parse_job

    for name in ("m5-daily-warehouse", "m5-daily-sku"):
        job = load_job(name)
        assert job.grains is not None and job.grains.names() == ["day", "week", "4-week"]
        week = job.grains.coarser[0]
        assert (week.periods, job.horizon) == (7, 28) and week.horizon >= 13
    raw = load_job("m5-daily-warehouse").model_dump(mode="json")
    bad = raw | {
        "grains": {
            "coarser": [{"name": "week", "periods": 7, "horizon": 13}, {"name": "m", "periods": 30, "horizon": 3}]
        }
    }
    with pytest.raises(Exception, match="nest exactly"):
        parse_job(bad)
    short = raw | {"grains": {"coarser": [{"name": "fortnight", "periods": 14, "horizon": 1}]}}
    with pytest.raises(Exception, match="ends before the day horizon"):
        parse_job(short)
