-- needs: level sku, columns warehouse sku
-- SKUs whose forecast moved most since the previous run: this run's published SKU forecast against the one
-- published for the as-of date before it, summed over the periods both runs forecast.
-- Parameters:  SET VARIABLE previous_run_dir = 'data/outputs/m5-monthly/2016-03-31';  (`forecasting recipe` sets it
--   to the run before this one)
--   SET VARIABLE top = 20;  (optional, default 20)
WITH previous AS (
    SELECT unique_id, ds, mean
    FROM read_parquet(getvariable('previous_run_dir') || '/reconciled_forecasts.parquet')
    WHERE published AND level = 'sku'
),
moved AS (
    SELECT c.warehouse, c.sku, count(*) AS periods, min(c.ds) AS first_period, max(c.ds) AS last_period,
           sum(p.mean) AS previous, sum(c.mean) AS current, sum(c.mean) - sum(p.mean) AS change
    FROM forecasts AS c JOIN previous AS p USING (unique_id, ds)
    WHERE c.level = 'sku'
    GROUP BY ALL
)
SELECT warehouse, sku, periods, first_period, last_period, round(previous, 1) AS previous, round(current, 1) AS current,
       round(change, 1) AS change, round(change / nullif(previous, 0), 3) AS change_share
FROM moved
ORDER BY abs(change) DESC, warehouse, sku
LIMIT coalesce(CAST(getvariable('top') AS INTEGER), 20);
