-- needs: nothing (any job)
-- The published forecast summed over the horizon per series of one level, largest first, with 80 % and 95 % bands
-- (summed bounds treat the periods as moving together: wider than the truth).
-- Parameters (optional):  SET VARIABLE level = 'state';  default: the level with the fewest series after the top one
--                         SET VARIABLE top = 10;  default 20
WITH sizes AS (
    SELECT level, count(DISTINCT unique_id) AS series FROM forecasts GROUP BY level
),
wanted AS (
    SELECT coalesce(
        getvariable('level'),
        (SELECT level FROM sizes ORDER BY series, level LIMIT 1 OFFSET 1),
        (SELECT level FROM sizes LIMIT 1)
    ) AS level
),
checked AS (
    SELECT CASE WHEN EXISTS (SELECT 1 FROM sizes WHERE sizes.level = wanted.level) THEN level
           ELSE error('demand_by_level: no level ''' || level || ''' in this run; its levels: '
                      || (SELECT string_agg(level, ', ' ORDER BY series, level) FROM sizes)) END AS level
    FROM wanted
)
SELECT f.level, f.unique_id, count(*) AS periods, min(f.ds) AS first_period, max(f.ds) AS last_period,
       round(sum(f.lo_95), 1) AS lo_95, round(sum(f.lo_80), 1) AS lo_80, round(sum(f.mean), 1) AS demand,
       round(sum(f.hi_80), 1) AS hi_80, round(sum(f.hi_95), 1) AS hi_95
FROM forecasts AS f JOIN checked AS c ON f.level = c.level
GROUP BY ALL
ORDER BY demand DESC, f.unique_id
LIMIT coalesce(CAST(getvariable('top') AS INTEGER), 20);
