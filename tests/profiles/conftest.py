"""Fixtures for the profiles tests: the seed texts (when the shared folder is present) and a
writer of small profile files for the malformed-file cases."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ._support import MINIMAL_PROFILE, SEEDS_DIR, normalise


@pytest.fixture(scope="session")
def seed_text() -> Callable[[str], str]:
    """The whitespace-free text of seed `NNN`; skips when the shared seeds are not present."""
    if not SEEDS_DIR.is_dir():
        pytest.skip(f"seed texts not found at {SEEDS_DIR} (set CAREGRID_SEEDS_DIR)")

    def read(seed: str) -> str:
        (path,) = SEEDS_DIR.glob(f"{seed}_*.txt")
        return normalise(path.read_text(encoding="utf-8"))

    return read


@pytest.fixture
def write_profile(tmp_path: Path) -> Callable[..., Path]:
    """Write MINIMAL_PROFILE (or `text`) with `replace` substitutions as ``<name>.toml``."""

    def write(
        text: str = MINIMAL_PROFILE,
        *,
        replace: dict[str, str] | None = None,
        append: str = "",
        name: str = "custom",
    ) -> Path:
        for old, new in (replace or {}).items():
            assert old in text, old
            text = text.replace(old, new)
        path = tmp_path / f"{name}.toml"
        path.write_text(text + append, encoding="utf-8")
        return path

    return write
