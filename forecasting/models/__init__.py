"""Base forecasts: the catalogue's models by family (statistical, intermittent, LightGBM), where they run
(engines), how their frames combine, and the Base choice per series. Imports job/ and data/ only."""
