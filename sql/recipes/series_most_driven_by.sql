-- needs: nothing (any job)
-- The series whose published forecast depends most on one driver family (a price change, an event, a flag such as
-- SNAP): that family's effect summed over the horizon as a share of the series' forecast, largest in size first.
-- Families are named from the job (`forecasting recipe drivers_by_level` lists them); the family given matches
-- every family starting with it, so 'event' takes every event together.
-- Parameters (optional):  SET VARIABLE family = 'event';  default 'price'
--                         SET VARIABLE level = 'warehouse';  default: the level with the most series (the bottom)
--                         SET VARIABLE top = 10;  default 20
WITH wanted AS (
    SELECT coalesce(getvariable('family'), 'price') AS family,
           coalesce(getvariable('level'),
                    (SELECT level FROM drivers GROUP BY level ORDER BY count(DISTINCT unique_id) DESC, level LIMIT 1))
           AS level
),
checked AS (
    SELECT CASE WHEN EXISTS (SELECT 1 FROM drivers AS d WHERE d.level = w.level) THEN w.level
                ELSE error('series_most_driven_by: no level ''' || w.level || ''' in this run; its levels: '
                           || (SELECT string_agg(DISTINCT level, ', ') FROM drivers)) END AS level,
           w.family
    FROM wanted AS w
),
per_series AS (
    SELECT d.level, d.unique_id, count(DISTINCT d.ds) AS periods,
           sum(d.effect) FILTER (WHERE starts_with(d.family, c.family)) AS effect,
           sum(d.effect) AS forecast
    FROM drivers AS d JOIN checked AS c ON d.level = c.level
    WHERE d.basis = 'hierarchy'
    GROUP BY ALL
)
SELECT level, unique_id, (SELECT family FROM checked) AS family, periods, round(forecast, 2) AS forecast,
       round(effect, 2) AS effect, round(effect / nullif(forecast, 0), 4) AS share
FROM per_series
WHERE effect IS NOT NULL AND effect <> 0
ORDER BY abs(effect / nullif(forecast, 0)) DESC NULLS LAST, unique_id
LIMIT coalesce(CAST(getvariable('top') AS INTEGER), 20);
