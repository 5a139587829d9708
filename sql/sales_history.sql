-- Sales history: raw sales rows -> one row per bottom series x period, with how many days of the period the data covers.
-- Reads the view raw_sales(<hierarchy keys>, ds_raw, quantity, day) that forecasting.data.sources defines over the job's
-- source (parquet, CSV, a DuckDB table or a Postgres table through DuckDB's postgres extension), with the job's key
-- filters already applied as bound values. `day` is the row's date as a day in the data's time zone
-- (forecasting.data.timezones), never the host's. The keys differ per job (region, warehouse, sku; or State, Region,
-- Purpose), so they pass through as `* EXCLUDE (...)` and `GROUP BY ALL`.
-- Parameters (bound, never formatted in): $period ('day' | 'week' | 'month' | 'quarter'), $as_of DATE,
-- $observed_from DATE, $observed_to DATE (the days the source covers).
WITH raw AS (
    SELECT * EXCLUDE (ds_raw, quantity, day), day, CAST(quantity AS DOUBLE) AS quantity
    FROM raw_sales
    WHERE day <= $as_of
),
periods AS (
    SELECT * EXCLUDE (day, quantity), CAST(date_trunc($period, day) AS DATE) AS ds, sum(quantity) AS y
    FROM raw
    GROUP BY ALL
),
bounds AS (
    SELECT DISTINCT
        ds,
        CAST(CASE $period
            WHEN 'day' THEN ds + INTERVAL 1 DAY
            WHEN 'week' THEN ds + INTERVAL 7 DAY
            WHEN 'month' THEN ds + INTERVAL 1 MONTH
            ELSE ds + INTERVAL 3 MONTH
        END AS DATE) AS next_ds
    FROM periods
),
coverage AS (
    SELECT
        ds,
        next_ds - ds AS days_in_period,
        greatest(0, least(next_ds - 1, least($observed_to, $as_of)) - greatest(ds, $observed_from) + 1) AS days_observed,
        next_ds - 1 > $as_of AS cut_by_as_of
    FROM bounds
)
SELECT p.*, c.days_observed, c.days_in_period, c.cut_by_as_of
FROM periods AS p
JOIN coverage AS c USING (ds)
ORDER BY ALL
