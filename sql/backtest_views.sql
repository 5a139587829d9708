-- Views over one published backtest folder (data/outputs/<job>/backtests/<as-of>), bound as:  SET VARIABLE backtest_dir = ?
-- One row per window (cutoff) x series x period x model (base) or method (reconciled), with the actual y beside it.
CREATE OR REPLACE TEMP VIEW backtest_base AS
    SELECT * FROM read_parquet(getvariable('backtest_dir') || '/backtest_base.parquet');
CREATE OR REPLACE TEMP VIEW backtest_reconciled AS
    SELECT * FROM read_parquet(getvariable('backtest_dir') || '/backtest_reconciled.parquet');
-- Per level and model: MAE, RMSE, RMSSE, relative bias, 80/95 % interval coverage, averaged over series and windows.
CREATE OR REPLACE TEMP VIEW backtest_metrics AS
    SELECT * FROM read_parquet(getvariable('backtest_dir') || '/metrics.parquet');
