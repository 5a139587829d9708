-- Views over staffing computed from published outputs without refitting (`forecasting staff`), bound as
--   SET VARIABLE job_dir = ?   (data/outputs/<job>)
-- Each view is created only when its files exist (forecasting.outputs.views checks first).
-- staffing_scenarios: one row per what-if x warehouse x process x period x quantile, baseline and what-if side by
-- side (headcount, headcount_scenario, ...), with the run's as-of date taken from the folder name.
CREATE OR REPLACE TEMP VIEW staffing_scenarios AS
    SELECT CAST(regexp_extract(filename, '/scenarios/([0-9-]+)/', 1) AS DATE) AS run_as_of, * EXCLUDE (filename)
    FROM read_parquet(getvariable('job_dir') || '/scenarios/*/*.parquet', union_by_name = true, filename = true);
