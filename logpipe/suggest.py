""""Did you mean" that only speaks when the name is close, and name lists people can read.

difflib's ratio suggests `format` for `time_format` and `api_key` for `tag_key`: a shared
suffix is not a typo. A suggestion here is a name within a small edit distance (adjacent
swaps count once): 1 for names up to 4 letters, 2 up to 10, 3 beyond.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable


def edit_distance(a: str, b: str) -> int:
    """Optimal string alignment distance (Levenshtein plus adjacent transpositions)."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[len(b)]


def close_name(word: str, names: Iterable[str]) -> str | None:
    """The known name `word` is most likely a typo of, or None."""
    limit = 1 if len(word) <= 4 else 2 if len(word) <= 10 else 3
    best: tuple[int, str] | None = None
    for name in names:
        if abs(len(name) - len(word)) > limit:
            continue
        d = edit_distance(word.lower(), name.lower())
        if d <= limit and (best is None or d < best[0]):
            best = (d, name)
    return best[1] if best else None


def name_list(names: Iterable[str], indent: str = "    ", width: int = 100) -> str:
    """Sorted names, comma-separated, wrapped onto indented lines."""
    text = ", ".join(sorted(names))
    return "\n".join(textwrap.wrap(text, width=width, initial_indent=indent, subsequent_indent=indent))
