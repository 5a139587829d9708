-- needs: previous run
-- Series whose published forecast moved most since the previous run, at one level (any job): this run's forecast
-- against the one published for the as-of date before it, summed over the periods both runs forecast.
-- Parameters:  SET VARIABLE previous_run_dir = 'data/outputs/<job>/<as-of>';  (`forecasting recipe` sets it)
--   SET VARIABLE level = 'state';  (optional; default: the level with the most series, the bottom)
--   SET VARIABLE top = 20;  (optional, default 20)
WITH wanted AS (
    SELECT coalesce(getvariable('level'),
                    (SELECT level FROM forecasts GROUP BY level ORDER BY count(DISTINCT unique_id) DESC, level LIMIT 1))
           AS level
),
previous AS (
    SELECT unique_id, ds, mean
    FROM read_parquet(getvariable('previous_run_dir') || '/reconciled_forecasts.parquet')
    WHERE published
),
moved AS (
    SELECT c.level, c.unique_id, count(*) AS periods, min(c.ds) AS first_period, max(c.ds) AS last_period,
           sum(p.mean) AS previous, sum(c.mean) AS current, sum(c.mean) - sum(p.mean) AS change
    FROM forecasts AS c JOIN previous AS p USING (unique_id, ds) JOIN wanted AS w ON c.level = w.level
    GROUP BY ALL
)
SELECT level, unique_id, periods, first_period, last_period, round(previous, 1) AS previous,
       round(current, 1) AS current, round(change, 1) AS change, round(change / nullif(previous, 0), 3) AS change_share
FROM moved
ORDER BY abs(change) DESC, unique_id
LIMIT coalesce(CAST(getvariable('top') AS INTEGER), 20);
