-- Order lines -> one row per bottom series x period, before the data-quality gate (forecasting.data.order_lines).
-- Reads the temp table order_lines_ruled: the view raw_lines (<hierarchy keys>, ds_raw, quantity, day, and price and
-- order_id when the job names them; key filters already applied) with `rule`, the index of the first of the job's
-- rules that leaves the line out (NULL: the line counts). `day` is the line's day in the data's time zone
-- (forecasting.data.timezones). The keys differ per job, so they pass through as `* EXCLUDE (...)`, `GROUP BY ALL`
-- and a NATURAL join on them.
-- Each period gets its summed quantity (returns negative under `returns: net`), its number of lines, and the
-- series' first period with a positive line (its first sale; NULL for a series that never sold).
-- Parameters (bound, never formatted in): $period ('day' | 'week' | 'month' | 'quarter').
WITH periods AS (
    SELECT
        * EXCLUDE (ds_raw, quantity, day, rule, price, order_id),
        CAST(date_trunc($period, day) AS DATE) AS ds,
        sum(CAST(quantity AS DOUBLE)) AS quantity,
        count(*) AS lines,
        bool_or(CAST(quantity AS DOUBLE) > 0) AS sold
    FROM (SELECT * FROM order_lines_ruled WHERE rule IS NULL)
    GROUP BY ALL
),
firsts AS (
    SELECT * EXCLUDE (ds, quantity, lines, sold), min(ds) AS first_sale
    FROM periods
    WHERE sold
    GROUP BY ALL
)
SELECT * EXCLUDE (sold)
FROM periods NATURAL LEFT JOIN firsts
ORDER BY ALL
