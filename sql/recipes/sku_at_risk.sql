-- needs: inventory
-- SKUs at risk of a stock-out within their lead time: the reorder point at the chosen service level is large against
-- the stock on hand, or the lead-time demand is unusually uncertain. Without stock on hand (the platform has none),
-- it lists the series whose safety stock is the largest share of the lead-time demand: the ones a late or short
-- order hurts first. Parameters (optional):
--   SET VARIABLE service_level = 0.95;  default: the highest in the table
--   SET VARIABLE top = 20;              default 20
WITH chosen AS (
    SELECT coalesce(CAST(getvariable('service_level') AS DOUBLE), max(service_level)) AS service_level FROM inventory
)
SELECT i.* EXCLUDE (unique_id, level, service_level, method),
       i.service_level,
       round(i.safety_stock / nullif(i.lead_time_demand_mean, 0), 2) AS safety_share,
       i.method
FROM inventory AS i, chosen AS c
WHERE abs(i.service_level - c.service_level) < 1e-9
ORDER BY safety_share DESC NULLS LAST, i.reorder_point DESC
LIMIT coalesce(CAST(getvariable('top') AS INTEGER), 20);
