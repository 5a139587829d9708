-- needs: nothing (any job)
-- Each level's published forecast over the horizon split into driver families (basis 'hierarchy': the bottom
-- series' drivers summed, plus the reconciliation's adjustment), with each family's share of the level's forecast.
-- Every family adds up across a coherent hierarchy, so a level's figures are those of its children summed.
-- Parameters (optional):  SET VARIABLE level = 'warehouse';  default: every level
--                         SET VARIABLE basis = 'own model';  default 'hierarchy'
SELECT level, basis, family, count(DISTINCT unique_id) AS series, min(ds) AS first_period, max(ds) AS last_period,
       round(sum(effect), 2) AS effect,
       round(sum(effect) / nullif(sum(sum(effect)) OVER (PARTITION BY level, basis), 0), 4) AS share
FROM drivers
WHERE basis = coalesce(getvariable('basis'), 'hierarchy')
  AND (getvariable('level') IS NULL OR level = getvariable('level'))
GROUP BY level, basis, family
ORDER BY level, abs(sum(effect)) DESC, family;
