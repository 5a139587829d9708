"""Prefect orchestration of the forecasting pipeline. Only orchestration lives here: every stage is a call into
:mod:`forecasting.pipeline`."""
