"""The README's promises: its embedding example runs and prints what it says."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.paths import REPO

README = REPO / "README.md"


def test_embedding_example_runs(tmp_path: Path) -> None:
    text = README.read_text()
    section = text[text.index("## Embedding"):]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    script = tmp_path / "example.py"
    script.write_text(code.group(1).replace("/tmp/logpipe-example", str(tmp_path / "state")))
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    promised = re.search(r"prints `(.*?)`", section)
    assert promised is not None
    assert result.stdout.strip() == promised.group(1)


def test_exactly_two_setup_commands() -> None:
    text = README.read_text()
    setup = text[text.index("## Set up"):text.index("## Running a pipeline")]
    commands = re.findall(r"```sh\n(.*?)\n```", setup, re.S)
    assert len(commands) == 2
    assert "logpipe run -f configs/quickstart.conf" in commands[0]
    assert "pytest" in commands[1]
