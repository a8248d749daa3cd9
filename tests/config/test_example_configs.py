"""Every example pipeline in configs/ loads and builds (plugins, settings, grok patterns)."""

from __future__ import annotations

from pathlib import Path

import pytest

from logpipe.pipeline import Pipeline
from tests.paths import REPO

CONFIGS = sorted((REPO / "configs").glob("*.conf"))


def test_there_are_example_configs() -> None:
    assert len(CONFIGS) >= 8


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_example_config_builds(path: Path, state_dir: str) -> None:
    pipeline = Pipeline.from_paths([str(path)], state_dir=state_dir)
    assert pipeline.built.inputs and pipeline.built.outputs
