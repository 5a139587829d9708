-- Per level, kind and model (or method, or the published forecast: kind 'published', model 'nested' or
-- 'in-sample choice') and window of one published backtest, bound as SET VARIABLE backtest_dir = ?: the metrics
-- the plan chooses from, window by window. Backtests published before nested evaluation have no such file.
CREATE OR REPLACE TEMP VIEW backtest_window_metrics AS
    SELECT * FROM read_parquet(getvariable('backtest_dir') || '/window_metrics.parquet');
