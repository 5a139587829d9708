-- The run's inventory quantities (jobs with an `inventory` section): one row per bottom series x service level,
-- lead-time demand, reorder point and safety stock from the published forecast's quantiles (forecasting.inventory).
CREATE OR REPLACE TEMP VIEW inventory AS
    SELECT * FROM read_parquet(getvariable('run_dir') || '/inventory.parquet');
