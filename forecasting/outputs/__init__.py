"""Outputs: atomic writes, locks, run folders, the published tables, and the readers of a run (views, recipes,
diff, report, what-if staffing). Imports every stage below it."""
