"""Reconciliation: the catalogue's methods through hierarchicalforecast (methods), middle-out (middle_out), the
orchestrator (core) and the errors intervals are calibrated on (calibration). Imports job/, data/ and models/."""
