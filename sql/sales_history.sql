-- Sales history: raw sales rows -> one row per sku x warehouse x period, with how many days of the period the data covers.
-- Reads the view raw_sales(sku, warehouse, region, ds_raw, quantity) that forecasting.io defines over the job's source
-- (parquet, CSV, a DuckDB table or a Postgres table through DuckDB's postgres extension).
-- Parameters (bound, never formatted in): $period ('day' | 'week' | 'month' | 'quarter'), $as_of DATE,
-- $observed_from DATE, $observed_to DATE (the days the source covers), $sku_filter and $warehouse_filter
-- (VARCHAR lists; empty = all).
WITH raw AS (
    SELECT sku, warehouse, region, CAST(ds_raw AS DATE) AS day, CAST(quantity AS DOUBLE) AS quantity
    FROM raw_sales
    WHERE CAST(ds_raw AS DATE) <= $as_of
      AND (len(CAST($sku_filter AS VARCHAR[])) = 0 OR list_contains(CAST($sku_filter AS VARCHAR[]), sku))
      AND (len(CAST($warehouse_filter AS VARCHAR[])) = 0 OR list_contains(CAST($warehouse_filter AS VARCHAR[]), warehouse))
),
periods AS (
    SELECT sku, warehouse, region, CAST(date_trunc($period, day) AS DATE) AS ds, sum(quantity) AS y
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
SELECT p.sku, p.warehouse, p.region, p.ds, p.y, c.days_observed, c.days_in_period, c.cut_by_as_of
FROM periods AS p
JOIN coverage AS c USING (ds)
ORDER BY p.warehouse, p.sku, p.ds
