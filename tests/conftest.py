"""Shared fixtures: the shared/ folder (grok vectors, real log samples) and plugin helpers."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.paths import SHARED


@pytest.fixture
def shared_dir() -> Path:
    assert SHARED.is_dir(), f"shared/ data folder not found at {SHARED} (set LOGPIPE_SHARED_DIR)"
    return SHARED


@pytest.fixture
def state_dir(tmp_path: Path) -> str:
    path = tmp_path / "state"
    path.mkdir()
    return str(path)
