"""Atomic writes: a table or text goes to a temp file in the same folder, is fsynced and renamed, so a reader sees
the old file or the whole new one, never a part."""

from __future__ import annotations

import errno
import json
import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

FULL = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "the disk quota is used up"}
FULL |= {errno.EFBIG: "the file size limit is reached"}
FULL_TEXT = {"No space left on device": errno.ENOSPC, "os error 28": errno.ENOSPC, "Disk quota exceeded": errno.EDQUOT}
FULL_TEXT |= {"File too large": errno.EFBIG, "os error 27": errno.EFBIG}


def disk_full(exc: BaseException) -> str | None:
    """What filled up, if `exc` (or an error it was raised from) is a full disk, a used-up quota or a file size
    limit; polars and pyarrow report one as text, not always as an OSError with its errno. Else None."""
    seen: BaseException | None = exc
    while seen is not None:
        code = getattr(seen, "errno", None)
        if code not in FULL:
            code = next((c for text, c in FULL_TEXT.items() if text in str(seen)), None)
        if code is not None:
            where = getattr(seen, "filename", None)
            return FULL[code] + (f" (writing {where})" if where else "")
        seen = seen.__cause__ or seen.__context__
    return None


class DiskFullError(OSError):
    """A publish stopped by a full disk; the message says what was kept."""


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
