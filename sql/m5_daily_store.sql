-- M5 daily history at store grain: one row per store x day over d_1..d_1941 (2011-01-29 .. 2016-05-22).
-- d_1..d_1913 come from the store rows of the daily state/store totals file; d_1914..d_1941 are the daily
-- item x store rows summed by store. state_id is the part of the store id before '_' (CA_1 -> CA).
-- Parameters (bound, never formatted in): $totals (m5_daily_state_store_totals_d1_d1913.parquet),
-- $bottom (m5_daily_bottom_d1914_d1941.parquet).
WITH totals AS (
    SELECT
        unique_id AS store_id,
        split_part(unique_id, '_', 1) AS state_id,
        CAST(date AS DATE) AS date,
        CAST(sales AS INTEGER) AS sales
    FROM read_parquet($totals)
    WHERE level = 'store'
),
bottom AS (
    SELECT
        store_id,
        state_id,
        CAST(date AS DATE) AS date,
        CAST(sum(sales) AS INTEGER) AS sales
    FROM read_parquet($bottom)
    GROUP BY store_id, state_id, CAST(date AS DATE)
)
SELECT store_id, state_id, date, sales
FROM (
    SELECT * FROM totals
    UNION ALL
    SELECT * FROM bottom
)
ORDER BY store_id, date
