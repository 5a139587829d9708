"""Atomic writes: a table or text goes to a temp file in the same folder, is fsynced and renamed, so a reader sees
the old file or the whole new one, never a part."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq


@dataclass
class TableParts:
    """A table built and written part by part (`make` yields its frames in order, one schema); `height`: its rows,
    known before it is built."""

    height: int
    make: Callable[[], Iterator[pl.DataFrame]]

    def __iter__(self) -> Iterator[pl.DataFrame]:
        return self.make()


Table = pl.DataFrame | Iterable[pl.DataFrame]  # a whole frame, or its parts in order (written one at a time)


def write_parquet_atomic(table: Table, path: Path) -> int:
    """Write a table to a temp file in the same folder, fsync, rename; returns its rows. A table given as parts
    (an iterator of frames with one schema) is streamed part by part into one file, one row group per part, so
    the whole table is never in memory."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        if isinstance(table, pl.DataFrame):
            table.write_parquet(tmp, compression="zstd", statistics=True)
            rows = table.height
        else:
            rows = _write_parts(table, tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return rows


def _write_parts(parts: Iterable[pl.DataFrame], path: Path) -> int:
    rows, writer = 0, None
    try:
        for part in parts:
            arrow = part.to_arrow()
            if writer is None:
                writer = pq.ParquetWriter(path, arrow.schema, compression="zstd", write_statistics=True)
            writer.write_table(arrow)
            rows += part.height
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        raise ValueError(f"{path.name}: a table given as parts had none")
    return rows


def write_text_atomic(text: str, path: Path) -> None:
    """Temp file in the same folder, fsync, rename: readers see the old file or the whole new one."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json_atomic(payload: dict, path: Path) -> None:
    write_text_atomic(json.dumps(payload, indent=2, sort_keys=True, default=str), path)
