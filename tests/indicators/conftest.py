"""Fixtures for the indicator tests: hand-built analytics stores and one local Spark session
per test run. With CI=true Spark must be available (the parity tests fail instead of
skipping); on a laptop without Java or PySpark they skip with a message."""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import IN_CI


def _spark_missing() -> str | None:
    if importlib.util.find_spec("pyspark") is None:
        return "PySpark is not installed (pip install -e '.[spark]')"
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "Java 17 is not installed (apt-get install openjdk-17-jre-headless)"
    return None


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    missing = _spark_missing()
    if missing:
        if IN_CI:
            pytest.fail(f"CI=true but Spark cannot run: {missing}")
        pytest.skip(f"Spark not available: {missing}")
    from caregrid.indicators.engine import spark_session

    yield spark_session()
