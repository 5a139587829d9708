-- needs: backtest
-- The series the published forecast got most wrong over the latest backtest's nested windows (each window published
-- with the plan chosen from the windows before it: kind 'published', model 'nested' in backtest_series_metrics).
-- RMSSE: the error over the series' own one-step naive error (M5's scale), so series of any size compare; bias =
-- sum (forecast - actual) / sum actual over the windows (negative: too low; empty when nothing was sold);
-- coverage_80 = share of actuals inside the 80 % interval. Series without a scale (no sales before a cutoff) last.
-- Parameters (optional):  SET VARIABLE level = 'sku';  (default: 'warehouse' where the job has it, else its level
--   with the most series; a level the backtest lacks is an error naming the ones it has)
--   SET VARIABLE top = 10;  (default 20)
-- In the duckdb shell: SET VARIABLE backtest_dir = 'data/outputs/m5-monthly/backtests/latest'; then
-- .read sql/backtest_views.sql and .read sql/backtest_series_views.sql before this file.
WITH wanted AS (
    SELECT coalesce(
        getvariable('level'),
        CASE WHEN EXISTS (SELECT 1 FROM backtest_series_metrics WHERE level = 'warehouse') THEN 'warehouse' END,
        (SELECT level FROM backtest_series_metrics GROUP BY level ORDER BY count(*) DESC, level LIMIT 1)
    ) AS level
),
checked AS (
    SELECT CASE WHEN EXISTS (SELECT 1 FROM backtest_series_metrics AS m WHERE m.level = wanted.level) THEN level
           ELSE error('series_most_wrong: no level ''' || level || ''' in this backtest; its levels: '
                      || (SELECT string_agg(DISTINCT level, ', ' ORDER BY level) FROM backtest_series_metrics)) END
           AS level
    FROM wanted
)
SELECT m.* EXCLUDE (kind, model, mae, rmse, rmsse, mase, bias, coverage_80, coverage_95, spl, mean_y),
       m.model AS method, round(m.rmsse, 3) AS rmsse, round(m.mase, 3) AS mase, round(m.bias, 3) AS bias,
       round(m.coverage_80, 3) AS coverage_80, round(m.mean_y, 1) AS mean_actual
FROM backtest_series_metrics AS m
JOIN checked AS c ON m.level = c.level
WHERE m.kind = 'published' AND m.model = 'nested'
ORDER BY m.rmsse DESC NULLS LAST, m.unique_id
LIMIT coalesce(CAST(getvariable('top') AS INTEGER), 20);
