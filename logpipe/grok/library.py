"""Pattern libraries: the bundled Logstash sets and user pattern files.

A pattern file holds lines `NAME REGEX` (Logstash splits on the first run of
whitespace; `#` starts a comment line). The bundled sets are parsed once per
process and cached, because every grok filter of a pipeline (and every rebuild
on reload) would otherwise re-read ~25 files — the cost that makes pygrok slow.
"""

from __future__ import annotations

import glob
import logging
import os
import re
from collections.abc import Mapping
from functools import lru_cache
from types import MappingProxyType

from logpipe.errors import GrokError

_log = logging.getLogger("logpipe.grok")
PATTERNS_ROOT = os.path.join(os.path.dirname(__file__), "patterns")

#: Logstash's `ecs_compatibility` values and the bundled set each one selects.
MODES = {"disabled": "legacy", "v1": "ecs-v1", "v8": "ecs-v1", "legacy": "legacy", "ecs-v1": "ecs-v1"}

_LINE = re.compile(r"^([A-Za-z0-9_]+)\s+(.*)$")
_NAME = re.compile(r"^[A-Za-z0-9_]+$")


def mode_dir(ecs_compatibility: str) -> str:
    """The folder of the bundled set for an `ecs_compatibility` value."""
    try:
        return os.path.join(PATTERNS_ROOT, MODES[ecs_compatibility])
    except KeyError:
        allowed = ", ".join(repr(m) for m in ("disabled", "v1", "v8"))
        raise GrokError(f"unknown ecs_compatibility {ecs_compatibility!r}; expected one of {allowed}") from None


def parse_pattern_text(text: str, source: str = "<patterns>") -> dict[str, str]:
    """Parse `NAME REGEX` lines. Lines that are not definitions are errors naming
    file and line, except comments and blank lines."""
    result: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip("\r\n")
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        m = _LINE.match(line.lstrip())
        if m is None:
            raise GrokError(f"{source}:{number}: expected 'NAME REGEX', got {stripped[:60]!r}")
        result[m.group(1)] = m.group(2)
    return result


def read_pattern_file(path: str) -> dict[str, str]:
    try:
        with open(path, encoding="utf-8") as fh:
            return parse_pattern_text(fh.read(), path)
    except OSError as exc:
        raise GrokError(f"cannot read pattern file {path}: {exc.strerror}") from None


@lru_cache(maxsize=8)
def builtin_patterns(ecs_compatibility: str = "disabled") -> Mapping[str, str]:
    """Every definition of the bundled set for this mode (read-only, cached)."""
    folder = mode_dir(ecs_compatibility)
    merged: dict[str, str] = {}
    for path in sorted(glob.glob(os.path.join(folder, "*"))):
        if os.path.isfile(path):
            merged.update(read_pattern_file(path))
    return MappingProxyType(merged)


def implicit_patterns_dirs() -> list[str]:
    """Folders every grok filter reads before its own `patterns_dir`, as Logstash reads
    `$LOGSTASH_HOME/patterns`: `/etc/logpipe/patterns` and `$LOGPIPE_HOME/patterns`, those that exist."""
    dirs = ["/etc/logpipe/patterns"]
    home = os.environ.get("LOGPIPE_HOME")
    if home:
        dirs.append(os.path.join(home, "patterns"))
    return [d for d in dirs if os.path.isdir(d)]


def load_patterns_dirs(dirs: list[str], files_glob: str = "*") -> dict[str, str]:
    """Definitions from user folders (Logstash `patterns_dir` + `patterns_files_glob`), in the
    order given, files in lexical order; later definitions win. As in Logstash, an entry may be a
    file or a glob, and one that matches nothing is skipped (with a warning), not an error."""
    merged: dict[str, str] = {}
    for entry in dirs:
        if os.path.isdir(entry):
            paths = sorted(glob.glob(os.path.join(entry, files_glob)))
        else:
            paths = sorted(glob.glob(entry))
            if not paths:
                _log.warning("grok patterns_dir %s does not exist; skipped", entry)
        for path in paths:
            if os.path.isfile(path):
                merged.update(read_pattern_file(path))
    return merged


def check_definitions(defs: Mapping[str, str]) -> dict[str, str]:
    """Validate inline `pattern_definitions` names."""
    out: dict[str, str] = {}
    for name, regex in defs.items():
        if not _NAME.match(str(name)):
            raise GrokError(f"invalid pattern name {name!r}: use letters, digits and '_'")
        out[str(name)] = str(regex)
    return out
