"""A third-party plugin package, as a user would ship one: its own pyproject with an entry point
in `logpipe.plugins`, built as a wheel, installed beside logpipe, found by name in a config
string, and tested with logpipe.testing — exactly as the built-ins are."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PYPROJECT = """
[build-system]
requires = ["setuptools>=77"]
build-backend = "setuptools.build_meta"

[project]
name = "logpipe-status-class"
version = "1.0.0"

[project.entry-points."logpipe.plugins"]
"filter.status_class" = "logpipe_status_class:StatusClass"
"""

MODULE = '''
from logpipe.event import Event
from logpipe.plugin import Filter, Setting


class StatusClass(Filter):
    name = "status_class"
    doc = "2xx, 4xx, 5xx from a numeric status field."
    settings = [Setting("field", "string", default="status", doc="the status field")]

    def filter(self, events: list[Event]) -> list[Event]:
        for ev in events:
            status = ev.get(f"[{self.params['field']}]")
            if isinstance(status, int):
                ev.set("[status_class]", f"{status // 100}xx")
                self.matched(ev)
        return events
'''

PROBE = '''
import asyncio
from logpipe import CallbackOutput, Pipeline
from logpipe.registry import lookup
from logpipe.testing import FilterDriver

async def main():
    cls = lookup("filter", "status_class")
    async with FilterDriver(cls(field="code", add_tag=["classified"])) as driver:
        [ev] = driver.run([{"code": 503}])
    assert ev.get("[status_class]") == "5xx" and ev.tags == ["classified"], ev
    seen = CallbackOutput()
    async with Pipeline.from_string('filter { status_class { field => "code" } }', outputs=[seen],
                                    state_dir=".") as pipeline:
        await pipeline.delivered(await pipeline.emit("web", {"code": 404}))
    print(cls.__module__, seen.events[0].record["status_class"])

asyncio.run(main())
'''


def test_a_plugin_package_installs_and_is_found_by_name(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "pyproject.toml").write_text(PYPROJECT)
    (src / "logpipe_status_class.py").write_text(MODULE)
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(src)],
                   check=True, capture_output=True)
    wheel = next(dist.glob("logpipe_status_class-1.0.0-*.whl"))
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, capture_output=True)
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=tmp_path,
                         env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["logpipe_status_class", "4xx"]
