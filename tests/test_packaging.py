"""plugins/ installs as `logpipe_plugins` (never a bare `plugins`), and a built wheel
finds every plugin through the entry points just as the editable install does."""

from __future__ import annotations

import shutil
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


def _tracked_copy(dest: Path) -> Path:
    """The repository's tracked files only: a wheel built in the checkout itself would pick up
    a stale `build/` directory (modules since removed reappear in it)."""
    listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True, check=False)
    if listed.returncode != 0:
        return REPO   # not a git checkout (an unpacked sdist): build where we are
    for name in listed.stdout.decode().split("\0"):
        if name and (REPO / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest / name)
    return dest


def test_built_wheel_finds_every_plugin(tmp_path: Path) -> None:
    import json

    source = _tracked_copy(tmp_path / "src")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "dist"),
                    str(source)], check=True, capture_output=True)
    wheel = next((tmp_path / "dist").glob("logpipe-*.whl"))
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                    str(wheel)], check=True, capture_output=True)
    assert not (target / "plugins").exists()
    # Every package of the source tree is in the wheel (pyproject lists them by hand).
    for init in [*(source / "logpipe").rglob("__init__.py"), *(source / "plugins").rglob("__init__.py")]:
        relative = init.parent.relative_to(source)
        installed = Path("logpipe_plugins", *relative.parts[1:]) if relative.parts[0] == "plugins" else relative
        assert (target / installed / "__init__.py").is_file(), f"{relative} is missing from the wheel"
    assert (target / "logpipe" / "grok" / "patterns").is_dir()
    env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd="/", env=env,
                         check=True)
    found = json.loads(out.stdout)
    assert found["plugins"].startswith(str(target)), found
    assert found["logpipe"].startswith(str(target)), found
    assert set(found["loaded"]) == _declared_entry_points()
    assert all(module.startswith("logpipe_plugins.") for module in found["loaded"].values())
