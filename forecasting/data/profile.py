"""What a stranger's data file holds, found in DuckDB SQL (`forecasting init`): the date column and its frequency, the
quantity, the key columns and how they nest (functional dependencies), subtotal rows, rows without a quantity, and
each series' length and total. Every value is a bound parameter; column names come from the file's own DESCRIBE and
are quoted. Nothing here decides the job: forecasting.job.scaffold does, from this profile."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
from pydantic import ValidationError

from forecasting.data import line_profile
from forecasting.data.line_profile import LineShape
from forecasting.data.sources import Relation, SourceError, _columns, _relation, quote_identifier
from forecasting.job.errors import InputError
from forecasting.job.schema import TableSource

NUMERIC = re.compile(r"^U?(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|FLOAT|DOUBLE|DECIMAL)")
DATE_NAME = re.compile(r"date|day|week|month|quarter|period|time|^ds$|^t$", re.IGNORECASE)
TIME_PART = re.compile(r"^(year|month|week|day|quarter|hour|minute|weekday|yr|mon)s?$", re.IGNORECASE)
QUANTITY_NAMES = ("quantity", "qty", "units", "unit_sales", "sales", "demand", "orders", "count", "volume", "trips")
SUBTOTAL_NAME = re.compile(r"^(all|total|totals|sum|subtotal|grand total|overall)\b|\btotal$", re.IGNORECASE)
FREQ_BY_DAYS = ((1, 1, "day"), (7, 7, "week"), (28, 31, "month"), (89, 92, "quarter"))
MAX_KEYS = 6


class ProfileError(InputError):
    """A file init cannot make a job for: unreadable, or no date, quantity or key column to be found."""

    stage = "init"


@dataclass
class Profile:
    """What the file holds; every decision carries its reason for the printed summary."""

    source: TableSource
    label: str
    rows: int
    columns: dict[str, str]
    date: str = ""
    freq: str = ""
    quantity: str = ""
    keys: list[str] = field(default_factory=list)  # top to bottom: fewest distinct values first
    distinct: dict[str, int] = field(default_factory=dict)
    parents: dict[str, str] = field(default_factory=dict)  # child key -> its nearest parent key
    aliases: dict[str, str] = field(default_factory=dict)  # a column dropped -> the key it repeats one to one
    null_rows: int = 0
    negative_rows: int = 0
    subtotals: dict[str, list[str]] = field(default_factory=dict)  # key -> values that sum the others
    first: date | None = None
    last: date | None = None
    periods: int = 0  # distinct periods in the file
    series: list[dict] = field(default_factory=list)  # keys, first, last, periods with rows, total, nonzero
    gaps: int = 0  # series missing a period between their first and last
    freq_given: bool = False  # --freq: rows aggregated to a coarser period than their own
    aligned: bool = True  # every date is the first day of its period
    lines: LineShape | None = None  # order lines: their order id, price and the rules init proposes
    reasons: list[str] = field(default_factory=list)


def open_source(source: TableSource) -> tuple[duckdb.DuckDBPyConnection, str, str]:
    """A connection with the file as the view `profiled`; returns it, the FROM clause and the file's label."""
    if source.format == "duckdb":
        path = source.resolved_path()
        if not path.is_file():
            raise ProfileError(f"{path}: DuckDB database file not found")
        con = duckdb.connect(str(path), read_only=True)
    else:
        con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    relation = _relation(con, source, "init_path")
    con.execute(f"CREATE TEMP VIEW profiled AS SELECT * FROM {relation.from_clause}")
    return con, "profiled", relation.label


def profile(
    source: TableSource, date_column: str | None = None, quantity: str | None = None, freq: str | None = None
) -> Profile:
    """Profile the file: each choice is the user's when given, else inferred with a reason."""
    try:
        con, table, label = open_source(source)
    except SourceError as exc:
        raise ProfileError(str(exc)) from exc
    try:
        columns = _columns(con, Relation(label, table))
        rows = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        if not rows:
            raise ProfileError(f"{label}: the file has no rows")
        found = Profile(source, label, rows, columns)
        _date(con, found, date_column)
        _quantity(con, found, quantity)
        found.lines = line_profile.detect(con, table, columns, found.date, found.quantity, rows)
        if found.lines is not None:
            found.reasons += found.lines.reasons
        _freq(con, found, freq)
        _keys(con, found)
        _nesting(con, found)
        _series(con, found)
        _subtotals(con, found)
        if found.lines is not None:
            _line_rules(con, found, found.lines)
        return found
    except duckdb.Error as exc:
        raise ProfileError(f"{label}: cannot be read: {' '.join(str(exc).split())}") from exc
    finally:
        con.close()


def _day(found: Profile) -> str:
    """SQL for the date column as a DATE."""
    column, kind = quote_identifier(found.date), found.columns[found.date]
    if kind == "DATE":
        return column
    if kind.startswith("TIMESTAMP"):
        return f"CAST({column} AS DATE)"
    return f"TRY_CAST({column} AS DATE)"


def _date(con: duckdb.DuckDBPyConnection, found: Profile, wanted: str | None) -> None:
    if wanted is not None:
        if wanted not in found.columns:
            raise ProfileError(f"{found.label}: --date {wanted!r} is not a column; the file has {_listed(found)}")
        found.date = wanted
        found.reasons.append(f"date column {wanted!r}: given")
        return
    scored = []
    for name, kind in found.columns.items():
        if kind == "DATE" or kind.startswith("TIMESTAMP"):
            share = 1.0
        elif kind == "VARCHAR":
            parsed, total = con.execute(
                f"SELECT count(TRY_CAST({quote_identifier(name)} AS DATE)), count({quote_identifier(name)}) "
                "FROM (SELECT * FROM profiled LIMIT 10000)"
            ).fetchone()
            share = parsed / total if total else 0.0
        else:
            continue
        if share >= 0.99:
            scored.append((bool(DATE_NAME.search(name)), kind == "DATE", name))
    if not scored:
        raise ProfileError(
            f"{found.label}: no column holds dates (a DATE or TIMESTAMP column, or text such as 2016-04-01); the "
            f"file has {_listed(found)}; name it with --date"
        )
    found.date = max(scored)[2]
    kind = found.columns[found.date]
    found.reasons.append(f"date column {found.date!r}: {'the one' if len(scored) == 1 else 'the best'} of type {kind}")


def _freq(con: duckdb.DuckDBPyConnection, found: Profile, wanted: str | None) -> None:
    day = _day(found)
    first, last, gap = con.execute(
        f"WITH d AS (SELECT DISTINCT {day} AS day FROM profiled WHERE {day} IS NOT NULL) "
        "SELECT min(day), max(day), median(step) FROM (SELECT day, day - lag(day) OVER (ORDER BY day) AS step FROM d)"
    ).fetchone()
    if first is None:
        raise ProfileError(f"{found.label}: column {found.date!r} holds no date")
    found.first, found.last = first, last
    if wanted is not None:
        found.freq, found.freq_given = wanted, True
        found.reasons.append(f"frequency {wanted}: given")
    else:
        matches = [name for low, high, name in FREQ_BY_DAYS if gap is not None and low <= gap <= high]
        if not matches:
            raise ProfileError(
                f"{found.label}: dates in {found.date!r} are a median {gap} days apart: not daily, weekly, monthly "
                "or quarterly; name the frequency to aggregate to with --freq (day, week, month or quarter)"
            )
        found.freq = matches[0]
        found.reasons.append(f"frequency {found.freq}: distinct dates are a median {gap:g} days apart")
        if found.lines is not None and found.freq == "day":
            found.freq = "week"
            found.reasons.append("order lines summed into weeks (most products sell on few days; --freq day for days)")
    found.periods, found.aligned = con.execute(
        f"SELECT count(DISTINCT date_trunc(?, {day})), bool_and({day} = date_trunc(?, {day})) "
        f"FROM profiled WHERE {day} IS NOT NULL",
        [found.freq, found.freq],
    ).fetchone()


def _quantity(con: duckdb.DuckDBPyConnection, found: Profile, wanted: str | None) -> None:
    numeric = [n for n, k in found.columns.items() if NUMERIC.match(k) and n != found.date and not TIME_PART.match(n)]
    if wanted is not None:
        if wanted not in found.columns:
            raise ProfileError(f"{found.label}: --quantity {wanted!r} is not a column; the file has {_listed(found)}")
        found.quantity = wanted
        found.reasons.append(f"quantity {wanted!r}: given")
    else:
        named = [n for q in QUANTITY_NAMES for n in numeric if n.lower() == q or n.lower().endswith("_" + q)]
        candidates = named or numeric
        if not candidates:
            raise ProfileError(f"{found.label}: no numeric column for the quantity; the file has {_listed(found)}")
        found.quantity = candidates[0]
        why = "its name says so" if named else "the first numeric column that is not a time part"
        found.reasons.append(f"quantity {found.quantity!r}: {why} (other numeric columns are left out)")
    q = quote_identifier(found.quantity)
    found.null_rows, found.negative_rows = con.execute(
        f"SELECT count(*) FILTER (WHERE {q} IS NULL), count(*) FILTER (WHERE {q} < 0) FROM profiled"
    ).fetchone()


def _keys(con: duckdb.DuckDBPyConnection, found: Profile) -> None:
    """Text columns (and integer ids) that group rows into series; a column unique per row or constant is not one."""
    candidates = []
    lines = found.lines
    for name, kind in found.columns.items():
        if name in (found.date, found.quantity) or TIME_PART.match(name):
            continue
        if lines is not None and name in (lines.order_id, lines.price):
            continue
        if lines is not None and line_profile.NOT_KEY_NAME.search(name):
            found.reasons.append(f"column {name!r} left out: it describes an order line, it does not group lines")
            continue
        is_id = NUMERIC.match(kind) and re.search(r"(^|_)(id|code|no|number|key)$", name, re.IGNORECASE)
        if kind == "VARCHAR" or kind.startswith("ENUM") or kind == "BOOLEAN" or is_id:
            candidates.append(name)
    counts = {}
    for name in candidates:
        counts[name] = con.execute(f"SELECT count(DISTINCT {quote_identifier(name)}) FROM profiled").fetchone()[0]
    # Series have a row per period at most, unless the rows are order lines: then a key value must only repeat.
    limit = found.rows // 2 if lines is not None else max(2, found.rows // max(2, found.periods) * 2)
    for name, n in counts.items():
        if n < 2:
            found.reasons.append(f"column {name!r} left out: one value only")
        elif n > limit:
            found.reasons.append(f"column {name!r} left out: {n} values, more than the rows per period allow for a key")
        else:
            found.keys.append(name)
            found.distinct[name] = n
    if not found.keys:
        raise ProfileError(
            f"{found.label}: no key column (text naming an item, store, region...) to tell series apart; the file "
            f"has {_listed(found)}. A file with one series needs a column naming it"
        )
    found.keys = sorted(found.keys, key=lambda k: (found.distinct[k], list(found.columns).index(k)))[:MAX_KEYS]


def _determines(con: duckdb.DuckDBPyConnection, child: str, parent: str) -> bool:
    """Whether every value of `child` sits under one value of `parent` (a functional dependency child -> parent)."""
    c, p = quote_identifier(child), quote_identifier(parent)
    return not con.execute(f"SELECT 1 FROM profiled GROUP BY {c} HAVING count(DISTINCT {p}) > 1 LIMIT 1").fetchall()


def _composite(con: duckdb.DuckDBPyConnection, key: str, others: list[str]) -> bool:
    """Whether `key` is only the combination of `others` (an id such as item x store): same series either way."""
    if not others:
        return False
    k, rest = quote_identifier(key), ", ".join(quote_identifier(o) for o in others)
    alone, combined, both = con.execute(
        f"SELECT count(DISTINCT {k}), count(DISTINCT ({rest})), count(DISTINCT ({k}, {rest})) FROM profiled"
    ).fetchone()
    return alone == combined == both


def _nesting(con: duckdb.DuckDBPyConnection, found: Profile) -> None:
    """Child -> nearest parent from functional dependencies; a key that repeats another one to one, or only combines
    others (an id of item x store), is dropped."""
    for key in sorted(found.keys, key=lambda k: -found.distinct[k]):
        others = [k for k in found.keys if k != key]
        if len(others) > 1 and _composite(con, key, others):
            found.keys.remove(key)
            found.aliases[key] = " x ".join(others)
            found.reasons.append(f"column {key!r} left out: it only combines {', '.join(map(repr, others))}")
    for a in list(found.keys):
        for b in list(found.keys):
            if a != b and a in found.keys and b in found.keys and found.distinct[a] == found.distinct[b]:
                if _determines(con, a, b) and _determines(con, b, a):
                    found.keys.remove(b)
                    found.aliases[b] = a
                    found.reasons.append(f"column {b!r} left out: it names the same series as {a!r}, one to one")
    for child in found.keys:
        parents = [p for p in found.keys if found.distinct[p] < found.distinct[child] and _determines(con, child, p)]
        if parents:
            nearest = max(parents, key=lambda p: found.distinct[p])
            found.parents[child] = nearest
            found.reasons.append(
                f"{child!r} nests in {nearest!r}: each of its {found.distinct[child]} values has one {nearest}"
            )
    crossed = [k for k in found.keys if k not in found.parents]
    if len(crossed) > 1:
        found.reasons.append(f"{', '.join(map(repr, crossed))} cross: no one of them determines another (grouped)")


def _series(con: duckdb.DuckDBPyConnection, found: Profile) -> None:
    keys = ", ".join(quote_identifier(k) for k in found.keys)
    q, day = quote_identifier(found.quantity), _day(found)
    rows = con.execute(
        f"SELECT {keys}, min(date_trunc(?, {day})) AS first, max(date_trunc(?, {day})) AS last, "
        f"count(DISTINCT date_trunc(?, {day})) AS periods, sum(abs({q})) AS total, "
        f"count(DISTINCT date_trunc(?, {day})) FILTER (WHERE {q} <> 0) AS nonzero "
        f"FROM profiled WHERE {q} IS NOT NULL AND {day} IS NOT NULL GROUP BY ALL ORDER BY ALL",
        [found.freq] * 4,
    ).fetchall()
    names = [*found.keys, "first", "last", "periods", "total", "nonzero"]
    found.series = [dict(zip(names, row, strict=True)) for row in rows]
    found.gaps = sum(periods_between(r["first"], r["last"], found.freq) > r["periods"] for r in found.series)


def _line_rules(con: duckdb.DuckDBPyConnection, found: Profile, lines: LineShape) -> None:
    """Order lines: lines per key and period, and the lines of the product key (the key of most values) that are
    not products."""
    lines.lines_per_key_period = line_profile.lines_per_key_period(con, "profiled", found.keys, _day(found), found.freq)
    found.reasons.append(
        f"order lines: {lines.lines_per_key_period:.1f} lines per {' x '.join(found.keys)} and {found.freq} on "
        "average, summed into one by the order-lines source"
    )
    product = max(found.keys, key=lambda k: found.distinct[k])
    said = len(lines.reasons)
    line_profile.not_products(con, "profiled", lines, product)
    found.reasons += lines.reasons[said:]


def periods_between(first: date, last: date, freq: str) -> int:
    """Periods from the one starting `first` to the one starting `last`, both counted (period starts)."""
    if freq in ("month", "quarter"):
        months = (last.year - first.year) * 12 + last.month - first.month
        return months // (3 if freq == "quarter" else 1) + 1
    return (last - first).days // (7 if freq == "week" else 1) + 1


def _subtotals(con: duckdb.DuckDBPyConnection, found: Profile) -> None:
    """Values of a key that are the sum of their siblings (a 'Total' row beside its parts): by name, or because in
    nearly every period and group the value equals the sum of the other values."""
    q, day = quote_identifier(found.quantity), _day(found)
    for key in found.keys:
        children = {c for c, p in found.parents.items() if p == key}
        others = [k for k in found.keys if k != key and k not in children]
        group = ", ".join([*(quote_identifier(k) for k in others), "ds"])
        k = quote_identifier(key)
        named = [
            row[0]
            for row in con.execute(f"SELECT DISTINCT CAST({k} AS VARCHAR) FROM profiled").fetchall()
            if row[0] is not None and SUBTOTAL_NAME.search(row[0])
        ]
        summed = con.execute(
            f"WITH g AS (SELECT {group}, CAST({k} AS VARCHAR) AS v, sum({q}) AS q, count(*) AS parts FROM "
            f"(SELECT *, date_trunc(?, {day}) AS ds FROM profiled WHERE {q} IS NOT NULL) GROUP BY ALL), "
            # a tie (a level summing to another): the subtotal is the value made of fewer rows
            f"t AS (SELECT {group}, sum(q) AS total, max(q) AS top, first(v ORDER BY q DESC, parts, v) AS v, "
            "count(*) AS n FROM g "
            "GROUP BY ALL HAVING count(*) >= 2 AND sum(q) > 0), "
            "present AS (SELECT v, count(*) AS groups FROM g GROUP BY v) "
            "SELECT t.v FROM t JOIN present USING (v) GROUP BY t.v, present.groups HAVING "
            "count(*) FILTER (WHERE abs(2 * top - total) <= 1e-6 * abs(total)) >= greatest(3, 0.9 * present.groups)",
            [found.freq],
        ).fetchall()
        values = sorted(set(named) | {row[0] for row in summed})
        if values:
            found.subtotals[key] = values
            found.reasons.append(
                f"subtotal rows: {key} = {', '.join(map(repr, values))} (their values sum the other {key} values)"
            )


def _listed(found: Profile) -> str:
    return ", ".join(f"{n} ({k})" for n, k in found.columns.items())


def source_for(path: str, file_format: str | None = None, table: str | None = None) -> TableSource:
    """The TableSource of a data file given on the command line: its format from --format or the file's suffix."""
    suffix = Path(path).suffix.lower()
    guessed = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".tsv": "csv", ".txt": "csv"}
    guessed |= {".duckdb": "duckdb", ".db": "duckdb"}
    kind = file_format or guessed.get(suffix)
    if kind is None:
        raise ProfileError(f"{path}: cannot tell the format from {suffix or 'no suffix'!r}; give --format")
    location = path if kind == "postgres" else str(Path(path).resolve())
    if kind in ("duckdb", "postgres") and not table:
        raise ProfileError(f"{path}: a {kind} source needs the table: give --table NAME")
    try:
        return TableSource(path=location, format=kind, table=table)
    except ValidationError as exc:
        raise ProfileError(f"{path}: {'; '.join(e['msg'] for e in exc.errors())}") from None
