-- needs: nothing (any job)
-- What moves one series' published forecast over the next N periods: each driver family's effect in units summed
-- over those periods, largest first, with its share of the forecast (docs/drivers.md). Basis 'hierarchy': the
-- bottom series' drivers summed up to this series, plus the reconciliation's adjustment; the rows sum to the
-- published forecast.
-- Parameters (optional):  SET VARIABLE series = 'total/CA';  default: the series with the largest forecast at the
--                           level with the fewest series (the total)
--                         SET VARIABLE periods = 1;  default: the whole horizon
--                         SET VARIABLE basis = 'own model';  default 'hierarchy'
WITH wanted AS (
    SELECT coalesce(getvariable('series'),
                    (SELECT unique_id FROM drivers WHERE basis = 'hierarchy'
                     GROUP BY level, unique_id
                     ORDER BY (SELECT count(DISTINCT d.unique_id) FROM drivers AS d WHERE d.level = drivers.level),
                              sum(effect) DESC, unique_id
                     LIMIT 1)) AS unique_id,
           coalesce(getvariable('basis'), 'hierarchy') AS basis
),
checked AS (
    SELECT CASE WHEN EXISTS (SELECT 1 FROM drivers AS d WHERE d.unique_id = w.unique_id AND d.basis = w.basis)
           THEN w.unique_id
           ELSE error('series_drivers: no series ''' || w.unique_id || ''' with basis ''' || w.basis
                      || ''' in this run''') END AS unique_id,
           w.basis
    FROM wanted AS w
),
horizon AS (
    SELECT DISTINCT ds FROM drivers JOIN checked USING (unique_id, basis)
    ORDER BY ds
    LIMIT coalesce(CAST(getvariable('periods') AS INTEGER), 1000000)
),
effects AS (
    SELECT d.level, d.unique_id, d.basis, d.family, min(d.ds) AS first_period, max(d.ds) AS last_period,
           count(DISTINCT d.ds) AS periods, sum(d.effect) AS effect
    FROM drivers AS d JOIN checked USING (unique_id, basis) JOIN horizon USING (ds)
    GROUP BY ALL
)
SELECT level, unique_id, basis, family, first_period, last_period, periods, round(effect, 2) AS effect,
       round(effect / nullif(sum(effect) OVER (), 0), 4) AS share
FROM effects
ORDER BY abs(effect) DESC, family;
