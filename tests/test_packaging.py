"""plugins/ installs as `logpipe_plugins` (never a bare `plugins`), and a built wheel
finds every plugin through the entry points just as the editable install does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.paths import REPO

PROBE = """
import importlib.metadata as md, json, sys
import logpipe, logpipe_plugins
from logpipe import registry
loaded = {}
for ep in md.entry_points(group="logpipe.plugins"):
    kind, _, name = ep.name.partition(".")
    loaded[ep.name] = registry.lookup(kind, name).__module__
print(json.dumps({"logpipe": logpipe.__file__, "plugins": logpipe_plugins.__file__, "loaded": loaded,
                  "bare": __import__("importlib.util").util.find_spec("plugins") is not None}))
"""


def _declared_entry_points() -> set[str]:
    import tomllib

    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    return set(data["project"]["entry-points"]["logpipe.plugins"])


def test_editable_install_finds_every_plugin() -> None:
    import json

    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd="/", check=True)
    found = json.loads(out.stdout)
    assert set(found["loaded"]) == _declared_entry_points()
    assert not found["bare"], "a top-level package named 'plugins' is importable"


def test_built_wheel_finds_every_plugin(tmp_path: Path) -> None:
    import json

    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "dist"),
                    str(REPO)], check=True, capture_output=True)
    wheel = next((tmp_path / "dist").glob("logpipe-*.whl"))
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                    str(wheel)], check=True, capture_output=True)
    assert not (target / "plugins").exists()
    assert (target / "logpipe" / "grok" / "patterns").is_dir()
    env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd="/", env=env,
                         check=True)
    found = json.loads(out.stdout)
    assert found["plugins"].startswith(str(target)), found
    assert found["logpipe"].startswith(str(target)), found
    assert set(found["loaded"]) == _declared_entry_points()
    assert all(module.startswith("logpipe_plugins.") for module in found["loaded"].values())
