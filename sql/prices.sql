-- Prices: weekly shelf prices -> day-weighted mean price per priced key (e.g. sku x warehouse) x period, for every
-- period the price file covers (future weeks included: planned prices are known ahead, which the horizon needs).
-- Reads the views raw_prices(<keys>, week, price) (key filters already applied) and raw_calendar(day_raw, day, week).
-- Parameters: $period ('day' | 'week' | 'month' | 'quarter').
WITH calendar AS (
    SELECT CAST(date_trunc($period, day) AS DATE) AS ds, week, count(*) AS days
    FROM raw_calendar
    GROUP BY ALL
)
SELECT p.* EXCLUDE (week, price), c.ds, sum(CAST(p.price AS DOUBLE) * c.days) / sum(c.days) AS price
FROM raw_prices AS p
JOIN calendar AS c USING (week)
GROUP BY ALL
ORDER BY ALL
