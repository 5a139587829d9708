"""Evaluation: M5 metrics, backtest scoring, rolling-origin backtests and the choices made from them. Imports
job/, data/, models/ and reconcile/."""
