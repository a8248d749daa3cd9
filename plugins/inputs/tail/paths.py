"""Which files a tail input watches (plugin-private helper of in_tail).

Paths are globs (`*`, `?`, `[..]`, `**` recursive) with `{a,b}` alternatives, as
Fluentd (comma-separated) and Logstash (arrays, Ruby's Dir.glob braces) write
them. Excludes are globs on the full path, or on the file name when they hold no
`/` (Logstash's `exclude => "*.gz"`).
"""

from __future__ import annotations

import fnmatch
import glob
import os
import re


def split_paths(values: list[str]) -> list[str]:
    """Fluentd writes `path a.log,b.log`; commas inside `{…}` are alternatives, not separators."""
    out: list[str] = []
    for value in values:
        depth, start = 0, 0
        for i, ch in enumerate(value):
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth = max(0, depth - 1)
            elif ch == "," and depth == 0:
                out.append(value[start:i].strip())
                start = i + 1
        out.append(value[start:].strip())
    return [p for p in out if p]


def expand_braces(pattern: str) -> list[str]:
    """`/var/log/{a,b}.log` → both paths (nested braces allowed)."""
    m = re.search(r"\{([^{}]*)\}", pattern)
    if m is None:
        return [pattern]
    head, tail = pattern[: m.start()], pattern[m.end():]
    out: list[str] = []
    for alt in m.group(1).split(","):
        out.extend(expand_braces(head + alt + tail))
    return out


def tag_for(template: str, path: str) -> str:
    """Fluentd's tag expansion: `*` becomes the path with `/` turned into `.`."""
    if "*" not in template:
        return template
    dotted = path.replace(os.sep, ".").strip(".")
    return template.replace("*", dotted)


class PathMatcher:
    def __init__(self, paths: list[str], excludes: list[str]) -> None:
        self.patterns = [os.path.expanduser(p) for path in split_paths(paths) for p in expand_braces(path)]
        self.excludes = [os.path.expanduser(p) for ex in excludes for p in expand_braces(ex)]

    def excluded(self, path: str) -> bool:
        name = os.path.basename(path)
        return any(fnmatch.fnmatchcase(path if "/" in ex else name, ex) for ex in self.excludes)

    def scan(self) -> list[str]:
        """Existing regular files matching the globs, minus the excluded ones, sorted, unique."""
        found: set[str] = set()
        for pattern in self.patterns:
            if glob.has_magic(pattern):
                candidates = glob.glob(pattern, recursive=True)
            else:
                candidates = [pattern]
            for path in candidates:
                if not self.excluded(path) and os.path.isfile(path):
                    found.add(os.path.abspath(path))
        return sorted(found)
