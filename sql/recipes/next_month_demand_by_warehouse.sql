-- needs: level warehouse, columns region warehouse
-- Next month's demand per warehouse, with 80 % and 95 % bands (the published reconciliation, view `forecasts`).
-- Parameter (optional):  SET VARIABLE month = '2016-05-01';  any day of the month wanted
--   default: the month after the run's as-of date.
-- A monthly job has one row per warehouse and month. For a daily job the month's days are summed: the summed
-- bounds treat the days as moving together, so the month's bands are wider than the truth; `periods` says how
-- many of the month's days the horizon covers.
WITH target AS (
    SELECT CAST(date_trunc('month', coalesce(
        CAST(getvariable('month') AS DATE),
        CAST((SELECT as_of FROM manifest) AS DATE) + INTERVAL 1 MONTH)) AS DATE) AS month
)
SELECT f.region, f.warehouse, t.month, count(*) AS periods,
       round(sum(f.lo_95)) AS lo_95, round(sum(f.lo_80)) AS lo_80, round(sum(f.mean)) AS demand,
       round(sum(f.hi_80)) AS hi_80, round(sum(f.hi_95)) AS hi_95
FROM forecasts AS f, target AS t
WHERE f.level = 'warehouse' AND date_trunc('month', f.ds) = t.month
GROUP BY ALL
ORDER BY f.warehouse;
