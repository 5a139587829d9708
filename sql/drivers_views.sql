-- What drives each published forecast (forecasting/outputs/drivers.py, docs/drivers.md): one row per series,
-- period, basis and driver family, the effect in units. Run after views.sql (run_dir bound) when the run has it.
CREATE OR REPLACE TEMP VIEW drivers AS
    SELECT * FROM read_parquet(getvariable('run_dir') || '/drivers.parquet');
