-- Prices: weekly shelf prices -> day-weighted mean price per sku x warehouse x period, for every period the price
-- file covers (future weeks included: planned prices are known ahead, which the forecast horizon needs).
-- Reads the views raw_prices(sku, warehouse, week, price) and raw_calendar(day_raw, week).
-- Parameters: $period ('day' | 'week' | 'month' | 'quarter'), $sku_filter, $warehouse_filter (VARCHAR lists; empty = all).
WITH calendar AS (
    SELECT CAST(date_trunc($period, CAST(day_raw AS DATE)) AS DATE) AS ds, week, count(*) AS days
    FROM raw_calendar
    GROUP BY ALL
)
SELECT p.sku, p.warehouse, c.ds, sum(CAST(p.price AS DOUBLE) * c.days) / sum(c.days) AS price
FROM raw_prices AS p
JOIN calendar AS c USING (week)
WHERE (len(CAST($sku_filter AS VARCHAR[])) = 0 OR list_contains(CAST($sku_filter AS VARCHAR[]), p.sku))
  AND (len(CAST($warehouse_filter AS VARCHAR[])) = 0 OR list_contains(CAST($warehouse_filter AS VARCHAR[]), p.warehouse))
GROUP BY ALL
ORDER BY p.warehouse, p.sku, c.ds
