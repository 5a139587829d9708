-- needs: staffing
-- Headcount needed per warehouse next month at p80, for a monthly job (m5-monthly): the monthly equivalent of
-- headcount_next_week_p80.sql.
-- Parameters (optional):  SET VARIABLE month = '2016-05-01';  default: the month after the run's as-of date
--                         SET VARIABLE quantile = 'p95';  default p80
WITH target AS (
    SELECT CAST(date_trunc('month', coalesce(
        CAST(getvariable('month') AS DATE),
        CAST((SELECT as_of FROM manifest) AS DATE) + INTERVAL 1 MONTH)) AS DATE) AS month
)
SELECT s.region, s.warehouse, s.ds AS month, CAST(sum(s.headcount) AS BIGINT) AS headcount, round(sum(s.fte), 1) AS fte,
       round(sum(s.labour_hours)) AS labour_hours, count(*) AS processes
FROM staffing AS s, target AS t
WHERE s.quantile = coalesce(getvariable('quantile'), 'p80') AND s.ds = t.month
GROUP BY ALL
ORDER BY s.warehouse;
