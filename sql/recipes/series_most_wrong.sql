-- The series the published reconciled forecast got most wrong over the latest backtest's windows (view
-- backtest_series_metrics, next to backtest_metrics's per-level figures). RMSSE: the error over the series' own
-- one-step naive error (M5's scale), so series of any size compare; bias = sum (forecast - actual) / sum actual
-- (negative: too low); coverage_80 = share of actuals inside the 80 % interval.
-- Parameters (optional):  SET VARIABLE level = 'sku';  (default 'warehouse')   SET VARIABLE top = 10;  (default 20)
WITH published AS (SELECT DISTINCT method FROM backtest_reconciled WHERE published)
SELECT m.* EXCLUDE (kind, model, mae, rmse, rmsse, mase, bias, coverage_80, coverage_95, spl, mean_y),
       m.model AS method, round(m.rmsse, 3) AS rmsse, round(m.mase, 3) AS mase, round(m.bias, 3) AS bias,
       round(m.coverage_80, 3) AS coverage_80, round(m.mean_y, 1) AS mean_actual
FROM backtest_series_metrics AS m JOIN published AS p ON m.model = p.method
WHERE m.kind = 'reconciled' AND m.level = coalesce(getvariable('level'), 'warehouse')
ORDER BY m.rmsse DESC NULLS LAST, m.unique_id
LIMIT coalesce(CAST(getvariable('top') AS INTEGER), 20);
