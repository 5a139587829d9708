-- needs: staffing
-- Headcount needed per warehouse next week at p80, for a daily job (m5-daily-warehouse).
-- Parameters (optional):  SET VARIABLE week_start = '2016-05-02';  default: the Monday after the run's as-of date
--                         SET VARIABLE quantile = 'p95';  default p80
-- The daily plan gives, per day and process, the people it takes to cover that day's hours; summed over processes
-- that is the day's headcount. The week needs the peak day's; the mean FTE says how much of it is steady load.
WITH target AS (
    SELECT coalesce(CAST(getvariable('week_start') AS DATE),
                    CAST(date_trunc('week', CAST(as_of AS DATE) + 7) AS DATE)) AS week_start
    FROM manifest
),
daily AS (
    SELECT s.region, s.warehouse, s.ds, CAST(sum(s.headcount) AS BIGINT) AS headcount, sum(s.fte) AS fte,
           sum(s.labour_hours) AS labour_hours
    FROM staffing AS s, target AS t
    WHERE s.quantile = coalesce(getvariable('quantile'), 'p80')
      AND s.ds >= t.week_start AND s.ds < t.week_start + 7
    GROUP BY ALL
)
SELECT region, warehouse, min(ds) AS week_start, count(*) AS days, CAST(max(headcount) AS BIGINT) AS headcount_peak_day,
       round(avg(fte), 1) AS mean_fte, round(sum(labour_hours)) AS labour_hours
FROM daily
GROUP BY ALL
ORDER BY warehouse;
