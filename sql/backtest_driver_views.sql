-- The latest backtest's check of the event drivers (forecasting/evaluate/driver_check.py): per event value, its
-- mean effect on its days against the realised uplift (actuals minus the forecast without it). Needs backtest_dir.
CREATE OR REPLACE TEMP VIEW backtest_driver_check AS
    SELECT * FROM read_parquet(getvariable('backtest_dir') || '/driver_check.parquet');
