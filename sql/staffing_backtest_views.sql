-- The plan's backtest (`forecasting staff --backtest`): per backtest window x warehouse x process x period x quantile,
-- the probability the plan was short of the labour the actual volume needed (short_hours, short_headcount) and
-- whether actual volume exceeded the demand quantile (short_demand). Bound as  SET VARIABLE job_dir = ?
CREATE OR REPLACE TEMP VIEW staffing_backtest AS
    SELECT regexp_extract(filename, '/staffing_backtests/([^/]+)\.parquet', 1) AS backtest, * EXCLUDE (filename)
    FROM read_parquet(getvariable('job_dir') || '/staffing_backtests/*.parquet', union_by_name = true, filename = true);
