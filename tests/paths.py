"""Where the repository and the shared/ data folder are, for tests at any depth."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("LOGPIPE_SHARED_DIR", REPO.parent / "shared"))
CONFIGS = REPO / "configs"
