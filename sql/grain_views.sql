-- Every time grain of a job with `grains` (docs/time-grains.md): day, week and 4-week rows in one view, with a
-- `grain` column to filter on, e.g. SELECT * FROM grain_forecasts WHERE grain = 'week' AND level = 'warehouse'.
CREATE OR REPLACE TEMP VIEW grain_forecasts AS
    SELECT * FROM read_parquet(getvariable('run_dir') || '/grain_forecasts.parquet');
