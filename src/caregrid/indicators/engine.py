"""Runs the registry's measures as Ibis expressions on DuckDB (embedded, the default) or on
PySpark (local mode here, a cluster for a province). Both engines get the same Arrow tables
from the analytics store and return integers; ratios are taken afterwards in Decimal, so the
two engines agree exactly (tested in tests/indicators/test_spark_parity.py)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Literal, Protocol

import ibis
import pyarrow as pa
from ibis.expr.types import Table

from caregrid.indicators.registry import Dimension, Indicator, Measure, Tables
from caregrid.indicators.store import SOURCES, AnalyticsStore

EngineName = Literal["duckdb", "spark"]
ENGINES: tuple[EngineName, ...] = ("duckdb", "spark")
QUANTUM = Decimal("0.000001")

# (group, member, month "YYYY-MM", grid)
Key = tuple[int | None, int | None, str | None, int | None]


class Backend(Protocol):
    name: str

    def tables(self) -> Tables: ...

    def run(self, expr: Table) -> pa.Table: ...


class DuckDBBackend:
    """An in-process DuckDB with the store's Arrow tables registered (no copy)."""

    name = "duckdb"

    def __init__(self, store: AnalyticsStore, threads: int | None = None) -> None:
        self.con: Any = ibis.duckdb.connect(threads=threads) if threads else ibis.duckdb.connect()
        # One DuckDB connection serves every request of the process: one query at a time.
        self._lock = threading.Lock()
        self._tables: Tables = {}
        for source in SOURCES:
            arrow = store.table(source.name)
            self.con.con.register(source.name, arrow)
            self._tables[source.name] = self.con.table(source.name)

    def tables(self) -> Tables:
        return self._tables

    def run(self, expr: Table) -> pa.Table:
        with self._lock:
            return self.con.to_pyarrow(expr)


_spark_lock = threading.Lock()
_spark_session: Any = None


def spark_session() -> Any:
    """One local Spark session per process (starting one takes seconds)."""
    global _spark_session
    with _spark_lock:
        if _spark_session is None:
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
            from pyspark.sql import SparkSession

            master = os.environ.get("CAREGRID_SPARK_MASTER", "local[2]")
            _spark_session = (
                SparkSession.builder.master(master)
                .appName("caregrid-indicators")
                .config("spark.ui.enabled", "false")
                .config("spark.sql.session.timeZone", "UTC")
                .config("spark.sql.shuffle.partitions", "4")
                .config("spark.sql.execution.arrow.pyspark.enabled", "true")
                .getOrCreate()
            )
            _spark_session.sparkContext.setLogLevel("ERROR")
        return _spark_session


class SparkBackend:
    """PySpark with the store's tables as temporary views (created from the Arrow tables)."""

    name = "spark"
    _serial = 0

    def __init__(self, store: AnalyticsStore, session: Any = None) -> None:
        self.session = session or spark_session()
        self.con: Any = ibis.pyspark.connect(self.session)
        SparkBackend._serial += 1
        self._tables: Tables = {}
        for source in SOURCES:
            view = f"cg_{source.name}_{SparkBackend._serial}"
            arrow = store.table(source.name)
            frame = self.session.createDataFrame(arrow)
            frame.createOrReplaceTempView(view)
            self._tables[source.name] = self.con.table(view)

    def tables(self) -> Tables:
        return self._tables

    def run(self, expr: Table) -> pa.Table:
        return self.con.to_pyarrow(expr)


def backend(store: AnalyticsStore, name: EngineName = "duckdb") -> Backend:
    if name == "spark":
        return SparkBackend(store)
    if name == "duckdb":
        return DuckDBBackend(store)
    raise ValueError(f"unknown engine {name!r}")


@dataclass(frozen=True)
class Cell:
    """One indicator's value for one key (group, member, month, grid; None = all)."""

    slug: str
    group: int | None
    member: int | None
    month: str | None
    grid: int | None
    numerator: int
    denominator: int | None
    value: Decimal | None

    @property
    def key(self) -> Key:
        return (self.group, self.member, self.month, self.grid)


def measure_expr(
    m: Measure,
    tables: Tables,
    start: date,
    end: date,
    dims: Sequence[Dimension],
    group_id: int | None = None,
) -> Table:
    """The Ibis expression for one measure: filtered to the period (and a group), grouped by
    the dimensions, aggregated to one integer column `v`."""
    t = m.prepare(tables, start, end) if m.prepare else tables[m.table]
    if m.date is not None:
        t = t.filter((t[m.date] >= start) & (t[m.date] <= end))
    if m.where is not None:
        t = t.filter(m.where(t))
    if group_id is not None:
        t = t.filter(t[m.group] == group_id)
    keys: dict[str, Any] = {}
    for dim in dims:
        if dim == "group":
            keys["g"] = t[m.group]
        elif dim == "member":
            keys["m"] = t.member
        elif dim == "month" and m.date is not None:
            keys["mo"] = t[m.date].year() * 100 + t[m.date].month()
        elif dim == "grid":
            keys["gr"] = t[m.grid]
    if m.band is not None:
        keys["band"] = t[m.band]
    if m.column is None:
        agg = t.count() if not m.distinct else t.id.nunique()
    else:
        agg = t[m.column].sum()
    if keys:
        return t.group_by(**keys).aggregate(v=agg)
    return t.aggregate(v=agg)


def _collect(rows: Iterable[tuple[Key, object, int]]) -> dict[Key, dict[object, int]]:
    """{key: {band: value}}, leaving out zero values (a key shared by a batched query is not
    a key of every measure in it)."""
    out: dict[Key, dict[object, int]] = {}
    for key, band, value in rows:
        if value == 0:
            continue
        bands = out.setdefault(key, {})
        bands[band] = bands.get(band, 0) + value
    return out


def batched_expr(
    t: Table,
    date_column: str | None,
    measures: Sequence[Measure],
    start: date,
    end: date,
    dims: Sequence[Dimension],
    group_id: int | None = None,
    band: str | None = None,
    grid: str = "grid",
    group: str = "group_id",
) -> Table:
    """One aggregate over `t` with a conditional sum `v<i>` per measure (all measures share
    the table or its preparation, the date column, the dimensions and the band)."""
    if date_column is not None:
        t = t.filter((t[date_column] >= start) & (t[date_column] <= end))
    if group_id is not None:
        t = t.filter(t[group] == group_id)
    keys: dict[str, Any] = {}
    for dim in dims:
        if dim == "group":
            keys["g"] = t[group]
        elif dim == "member":
            keys["m"] = t.member
        elif dim == "month" and date_column is not None:
            keys["mo"] = t[date_column].year() * 100 + t[date_column].month()
        elif dim == "grid":
            keys["gr"] = t[grid]
    if band is not None:
        keys["band"] = t[band]
    metrics: dict[str, Any] = {}
    for index, m in enumerate(measures):
        if m.column is None and m.where is None:
            metrics[f"v{index}"] = t.count()
            continue
        value: Any = ibis.literal(1) if m.column is None else t[m.column]
        if m.where is not None:
            value = ibis.ifelse(m.where(t), value, 0)
        metrics[f"v{index}"] = value.sum()
    if keys:
        return t.group_by(**keys).aggregate(**metrics)
    return t.aggregate(**metrics)


def _rows(result: pa.Table, column: str = "v") -> Iterable[tuple[Key, object, int]]:
    columns = result.column_names
    data = result.to_pydict()
    n = result.num_rows
    for i in range(n):
        group = data["g"][i] if "g" in columns else None
        member = data["m"][i] if "m" in columns else None
        month_num = data["mo"][i] if "mo" in columns else None
        month = f"{month_num // 100:04d}-{month_num % 100:02d}" if month_num is not None else None
        grid = data["gr"][i] if "gr" in columns else None
        band = data["band"][i] if "band" in columns else None
        value = data[column][i]
        yield (group, member, month, grid), band, int(value or 0)


def compute(
    engine: Backend,
    indicators: Sequence[Indicator],
    start: date,
    end: date,
    by: Sequence[Dimension] = (),
    group_id: int | None = None,
) -> list[Cell]:
    """Every indicator for the period, broken down by the requested dimensions it supports
    (an indicator that does not support a dimension is reported across it, key None)."""
    tables = engine.tables()
    cache: dict[tuple[int, tuple[Dimension, ...]], dict[Key, dict[object, int]]] = {}

    # Measures over the same table, date column and dimensions run as one query with one
    # conditional sum each (one scan instead of one per measure); prepared and banded
    # measures run alone.
    Plan = tuple[object, str | None, tuple[Dimension, ...], str | None, str, str]
    plans: dict[Plan, list[Measure]] = {}
    for indicator in indicators:
        dims = tuple(d for d in by if indicator.supports(d))
        for m in (indicator.numerator, indicator.denominator):
            if m is None or (id(m), dims) in cache:
                continue
            cache[(id(m), dims)] = {}
            if m.distinct:
                result = engine.run(measure_expr(m, tables, start, end, dims, group_id))
                cache[(id(m), dims)] = _collect(_rows(result))
                continue
            source: object = m.prepare if m.prepare is not None else m.table
            grid = m.grid if "grid" in dims else "grid"
            batch = plans.setdefault((source, m.date, dims, m.band, grid, m.group), [])
            if all(other is not m for other in batch):
                batch.append(m)
    for (_source, date_column, dims, band, grid, group_column), measures in plans.items():
        first = measures[0]
        base = first.prepare(tables, start, end) if first.prepare else tables[first.table]
        expr = batched_expr(
            base, date_column, measures, start, end, dims, group_id, band, grid, group_column
        )
        result = engine.run(expr)
        for index, m in enumerate(measures):
            cache[(id(m), dims)] = _collect(_rows(result, f"v{index}"))

    def evaluate(m: Measure, dims: tuple[Dimension, ...]) -> dict[Key, dict[object, int]]:
        return cache[(id(m), dims)]

    cells: list[Cell] = []
    for indicator in indicators:
        dims = tuple(d for d in by if indicator.supports(d))
        num = evaluate(indicator.numerator, dims)
        den = evaluate(indicator.denominator, dims) if indicator.denominator else None
        keys = set(num) | (set(den) if den is not None else set())
        if not keys and not dims:
            keys = {(None, None, None, None)}
        for key in sorted(keys, key=_sort_key):
            n_bands = num.get(key, {})
            numerator = sum(n_bands.values())
            if den is None:
                denominator = None
                value: Decimal | None = (Decimal(numerator) * indicator.scale).quantize(QUANTUM)
            else:
                d_bands = den.get(key, {})
                denominator = sum(d_bands.values())
                if indicator.combine is not None:
                    value = indicator.combine(n_bands, d_bands)
                elif denominator == 0:
                    value = None
                else:
                    value = Decimal(numerator) / Decimal(denominator) * indicator.scale
                if value is not None:
                    value = value.quantize(QUANTUM)
            group, member, month, grid_id = key
            cells.append(
                Cell(indicator.slug, group, member, month, grid_id, numerator, denominator, value)
            )
    return cells


def _sort_key(key: Key) -> tuple[int, int, str, int]:
    group, member, month, grid = key
    return (
        group if group is not None else -1,
        member if member is not None else -1,
        month or "",
        grid if grid is not None else -1,
    )
