"""The data stages: sources through DuckDB SQL, the data-quality gate, the hierarchy, calendar and price features,
target transforms and trading days; the bundled and synthetic data sets. Imports job/ only."""
