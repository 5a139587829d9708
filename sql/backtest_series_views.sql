-- Per series and model (base) or method (reconciled) over the windows of one published backtest, bound as
-- SET VARIABLE backtest_dir = ?: MAE, RMSE, RMSSE, MASE, relative bias, 80/95 % coverage, scaled pinball loss, the mean
-- actual and the windows scored. Backtests published before this table existed have no such file (no view then).
CREATE OR REPLACE TEMP VIEW backtest_series_metrics AS
    SELECT * FROM read_parquet(getvariable('backtest_dir') || '/series_metrics.parquet');
