"""Derived data sets built from the raw files in data/.

`python -m forecasting.data.bundled` rebuilds data/m5/m5_daily_store_sales.parquet: the daily M5 history per store
(10 stores x d_1..d_1941), the history file of the daily warehouse job. The query is sql/m5_daily_store.sql; the
input paths (and the output path) are bound as parameters, never formatted into the SQL.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from forecasting.job.common import project_root

M5_DIR = Path("data") / "m5"
M5_TOTALS = M5_DIR / "m5_daily_state_store_totals_d1_d1913.parquet"
M5_BOTTOM = M5_DIR / "m5_daily_bottom_d1914_d1941.parquet"
M5_DAILY_STORE = M5_DIR / "m5_daily_store_sales.parquet"


def build_m5_daily_store(root: Path, out: Path | None = None) -> Path:
    """Write the store x day M5 history (store_id, state_id, date, sales) as zstd parquet and return its path.

    `root` is the project folder holding data/ and sql/; `out` defaults to root/data/m5/m5_daily_store_sales.parquet.
    The file is written next to its target under a temporary name and then moved into place with os.replace, so a
    reader never sees a half-written file.
    """
    root = Path(root)
    target = Path(out) if out is not None else root / M5_DAILY_STORE
    query = (root / "sql" / "m5_daily_store.sql").read_text().strip().rstrip(";")
    for source in (root / M5_TOTALS, root / M5_BOTTOM):
        if not source.exists():
            raise FileNotFoundError(f"{source}: input file not found")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with duckdb.connect() as con:
            con.execute(
                f"COPY (\n{query}\n) TO $out (FORMAT parquet, COMPRESSION zstd)",
                {"totals": str(root / M5_TOTALS), "bottom": str(root / M5_BOTTOM), "out": str(tmp)},
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


if __name__ == "__main__":
    print(build_m5_daily_store(project_root()))
