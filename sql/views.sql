-- Views over one published run folder. forecasting.cli binds the folder first:  SET VARIABLE run_dir = ?
-- (by default the job's `latest` run). Planners can also run this file by hand in the duckdb shell after
--   SET VARIABLE run_dir = 'data/outputs/m5-monthly/latest';
CREATE OR REPLACE TEMP VIEW base_forecasts AS
    SELECT * FROM read_parquet(getvariable('run_dir') || '/base_forecasts.parquet');
CREATE OR REPLACE TEMP VIEW reconciled_forecasts AS
    SELECT * FROM read_parquet(getvariable('run_dir') || '/reconciled_forecasts.parquet');
-- The published reconciliation only (one row per series and period): what plans should use.
CREATE OR REPLACE TEMP VIEW forecasts AS
    SELECT * EXCLUDE (published) FROM reconciled_forecasts WHERE published;
CREATE OR REPLACE TEMP VIEW staffing AS
    SELECT * FROM read_parquet(getvariable('run_dir') || '/staffing.parquet');
CREATE OR REPLACE TEMP VIEW manifest AS
    SELECT * FROM read_json_auto(getvariable('run_dir') || '/manifest.json');
