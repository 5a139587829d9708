-- Order lines -> the average price per bottom series x period, the bottom LightGBM's price feature
-- (forecasting.data.features.price_features). Reads the temp tables order_lines_ruled (see sql/order_lines.sql) and
-- order_line_periods (its result). The average is weighted by quantity over the lines that count with a positive
-- quantity and a price above 0. Every period from the series' first sale to the horizon's end gets a row (NULL where
-- no line was priced), so that the features carry the last average forward: a period without a sale is not told
-- apart by a missing price (which would give its zero away to the model), and the horizon has a price too. Weeks
-- before a series' first priced line (sold at price 0 only) take its first average. A series never priced has none.
-- Parameters (bound): $period ('day' | 'week' | 'month' | 'quarter'), $step (that period as an interval, e.g.
-- '7 days'), $horizon (periods forecast after the last period of the data).
WITH priced AS (
    SELECT
        * EXCLUDE (ds_raw, quantity, day, rule, price, order_id),
        CAST(date_trunc($period, day) AS DATE) AS ds,
        sum(CAST(quantity AS DOUBLE) * CAST(price AS DOUBLE)) / sum(CAST(quantity AS DOUBLE)) AS price
    FROM order_lines_ruled
    WHERE rule IS NULL AND CAST(quantity AS DOUBLE) > 0 AND CAST(price AS DOUBLE) > 0
    GROUP BY ALL
),
series AS (
    SELECT * EXCLUDE (ds, quantity, lines, first_sale), min(first_sale) AS first_sale
    FROM order_line_periods
    WHERE first_sale IS NOT NULL
    GROUP BY ALL
),
grid AS (
    SELECT
        * EXCLUDE (first_sale),
        CAST(unnest(range(
            CAST(first_sale AS TIMESTAMP),
            CAST((SELECT max(ds) FROM order_line_periods) AS TIMESTAMP) + CAST($step AS INTERVAL) * $horizon
                + INTERVAL 1 DAY,
            CAST($step AS INTERVAL)
        )) AS DATE) AS ds
    FROM series
),
firsts AS (
    SELECT * EXCLUDE (ds, price), min(ds) AS first_priced, arg_min(price, ds) AS first_price
    FROM priced
    GROUP BY ALL
)
SELECT
    * EXCLUDE (price, first_priced, first_price),
    CASE WHEN ds < first_priced THEN first_price ELSE price END AS price
FROM grid NATURAL LEFT JOIN priced NATURAL LEFT JOIN firsts
ORDER BY ALL
