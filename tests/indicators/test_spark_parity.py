"""DuckDB and Spark agree exactly: every indicator, on a demo city's year, by group, member
and month. Runs in CI (CI=true makes a missing Spark fail)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from caregrid.core.db import make_engine
from caregrid.demo.builder import build_demo
from caregrid.indicators.engine import DuckDBBackend, SparkBackend, compute
from caregrid.indicators.registry import INDICATORS
from caregrid.indicators.store import AnalyticsStore

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> AnalyticsStore:
    folder: Path = tmp_path_factory.mktemp("parity")
    engine = make_engine(f"sqlite:///{folder}/demo.db")
    build_demo(engine, profile_id="zhongwei", residents=1500, seed=11,
               password="demo-pass-123", reference_date=date(2025, 12, 31))  # fmt: skip
    store = AnalyticsStore()
    store.sync(engine)
    engine.dispose()
    return store


def test_duckdb_and_spark_agree_exactly_on_the_demo_year(
    demo_store: AnalyticsStore, spark: Any
) -> None:
    assert demo_store.tables["encounter"].num_rows > 5000
    duck = DuckDBBackend(demo_store)
    sparkb = SparkBackend(demo_store, spark)
    start, end = date(2025, 1, 1), date(2025, 12, 31)
    for by in ((), ("group", "member", "month")):
        expected = compute(duck, INDICATORS, start, end, by)
        got = compute(sparkb, INDICATORS, start, end, by)
        assert got == expected
        assert any(c.value is not None and c.value != 0 for c in expected)
