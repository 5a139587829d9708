-- needs: backtest
-- Forecast error per level over the latest backtest's windows, for every base model and every reconciliation
-- (views backtest_base and backtest_reconciled; `forecasting backtest` publishes them).
-- WAPE = sum |actual - forecast| / sum actual; bias = sum (forecast - actual) / sum actual (negative: too low);
-- coverage_80 = share of actuals inside the 80 % interval. `backtest_metrics` has the scaled metrics (RMSSE, MASE).
-- Parameter (optional):  SET VARIABLE cutoff = '2015-09-01';  one window only (default: all windows)
WITH errors AS (
    SELECT level, 'base' AS kind, model, cutoff, unique_id, y, mean, lo_80, hi_80 FROM backtest_base
    UNION ALL
    SELECT level, 'reconciled' AS kind, method AS model, cutoff, unique_id, y, mean, lo_80, hi_80
    FROM backtest_reconciled
)
SELECT level, kind, model, count(DISTINCT cutoff) AS windows, count(DISTINCT unique_id) AS series,
       round(avg(abs(y - mean)), 2) AS mae,
       round(sum(abs(y - mean)) / nullif(sum(abs(y)), 0), 3) AS wape,
       round(sum(mean - y) / nullif(sum(y), 0), 3) AS bias,
       round(avg(CASE WHEN y BETWEEN lo_80 AND hi_80 THEN 1.0 ELSE 0.0 END), 3) AS coverage_80
FROM errors
WHERE getvariable('cutoff') IS NULL OR cutoff = CAST(getvariable('cutoff') AS DATE)
GROUP BY ALL
ORDER BY series, level, kind, wape;
