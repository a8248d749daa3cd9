"""The Grok class: compile grok expressions once, match them fast and safely.

Compilation: library definitions (cached per process) + `patterns_dir` files +
inline `pattern_definitions` → `%{…}` expansion → Oniguruma→re translation →
`re.compile` → a generated matcher function (see `extract`). Compiled expressions
are cached per process by everything that affects them, so a config reload or a
second filter with the same pattern costs nothing.
"""

from __future__ import annotations

import contextlib
import re
import threading
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from logpipe.errors import GrokError, GrokTimeout
from logpipe.grok import watchdog
from logpipe.grok.expand import CAPTURE_MARK, Expander, Expansion, find_references
from logpipe.grok.extract import CaptureEntry, ExtractFn, IntoFn, MatchFn, build_matcher, capture_path
from logpipe.grok.library import builtin_patterns, check_definitions, load_patterns_dirs, mode_dir
from logpipe.grok.translate import FLAGS, translate


@dataclass
class Compiled:
    """One expression, compiled."""

    expression: str
    regex: re.Pattern[str]
    match: MatchFn
    extract: ExtractFn
    into: IntoFn
    entries: list[CaptureEntry]
    oniguruma: str
    _slow: Any = None

    def fallback(self) -> Any:
        """The same regex in the `regex` module (which supports `timeout=`)."""
        if self._slow is None:
            import regex

            self._slow = regex.compile(self.regex.pattern, regex.S | regex.M | regex.A | regex.V0)
        return self._slow

    def bounded_search(self, text: str, timeout: float) -> Any:
        """Search on the `regex` module with its own timeout: the path for threads (or
        processes) where the SIGALRM watchdog cannot run. Raises GrokTimeout."""
        try:
            return self.fallback().search(text, timeout=timeout)
        except TimeoutError:
            raise GrokTimeout("grok match exceeded its time budget") from None


_CACHE: dict[tuple[Any, ...], Compiled] = {}
_CACHE_LOCK = threading.Lock()
_CACHE_MAX = 2048


def definitions_for(ecs_compatibility: str = "disabled", patterns_dir: Sequence[str] | None = None,
                    pattern_definitions: Mapping[str, str] | None = None,
                    patterns_files_glob: str = "*") -> dict[str, str]:
    """Bundled set for the mode, then `patterns_dir` files, then inline definitions."""
    defs = dict(builtin_patterns(ecs_compatibility))
    if patterns_dir:
        defs.update(load_patterns_dirs(list(patterns_dir), patterns_files_glob))
    if pattern_definitions:
        defs.update(check_definitions(pattern_definitions))
    return defs


def compile_expression(expression: str, definitions: Mapping[str, str], *, named_captures_only: bool = True,
                       keep_empty_captures: bool = False) -> Compiled:
    """Expand, translate and compile one grok expression (uncached)."""
    expansion = Expander(definitions, named_captures_only).expand(expression)
    entries_by_name: dict[str, tuple[str, str | None]] = {}
    counter = [0]

    def name_group(raw: str) -> str:
        safe = f"g{counter[0]}"
        counter[0] += 1
        if raw.startswith(CAPTURE_MARK):
            spec = expansion.captures[int(raw[1:])]
            entries_by_name[safe] = (spec.field, spec.type)
        else:
            entries_by_name[safe] = (raw, None)
        return safe

    try:
        translation = translate(expansion.text, name_group)
        regex = _re_compile(translation.pattern)
    except GrokError as exc:
        raise _blame(expansion) or _located(exc.reason, expansion, exc.position or 0) from None
    except re.error as exc:
        offset = translation.input_offset(exc.pos) if exc.pos is not None else 0
        raise _blame(expansion) or _located(f"invalid regex: {exc.msg}", expansion, offset) from None
    entries = []
    for safe, number in sorted(regex.groupindex.items(), key=lambda kv: kv[1]):
        fld, typ = entries_by_name[safe]
        try:
            path = capture_path(fld)
        except GrokError as exc:
            raise GrokError(exc.reason, text=expression) from None
        entries.append(CaptureEntry(number, fld, path, typ))
    try:
        matcher, extractor, into = build_matcher(regex.search, entries, keep_empty_captures)
    except GrokError as exc:
        raise GrokError(f"{exc.reason} in {expression!r}") from None
    return Compiled(expression, regex, matcher, extractor, into, entries, expansion.text)


def _re_compile(pattern: str) -> re.Pattern[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            return re.compile(pattern, FLAGS)
        except FutureWarning as exc:
            raise GrokError(f"ambiguous regex: {exc}") from None


def _blame(expansion: Expansion) -> GrokError | None:
    """Find the one definition (or the expression) that is broken on its own, with
    its references stubbed out: errors in the whole expansion are hard to place
    (an unbalanced '(' is only noticed at the end)."""
    for name, text in reversed(list(expansion.sources.items())):
        stubbed, spans = _stub_references(text)
        try:
            _re_compile(translate(stubbed, lambda raw: "x").pattern)
        except GrokError as exc:
            return GrokError(exc.reason, pattern=name, position=_unstub(spans, exc.position or 0), text=text)
        except re.error as exc:
            tr_pos = exc.pos or 0
            with contextlib.suppress(GrokError):
                tr_pos = translate(stubbed, lambda raw: "x").input_offset(tr_pos)
            return GrokError(f"invalid regex: {exc.msg}", pattern=name, position=_unstub(spans, tr_pos),
                             text=text)
    return None


def _stub_references(text: str) -> tuple[str, list[tuple[int, int]]]:
    """`text` with each %{…} replaced by an empty group, and (stub offset, original offset) pairs."""
    parts: list[str] = []
    spans: list[tuple[int, int]] = []
    pos = out = 0
    for ref in find_references(text):
        spans.append((out, pos))
        chunk = text[pos:ref.start]
        parts += [chunk, "(?:)"]
        out += len(chunk)
        spans.append((out, ref.start))
        out += 4
        pos = ref.end
    spans.append((out, pos))
    parts.append(text[pos:])
    return "".join(parts), spans


def _unstub(spans: list[tuple[int, int]], offset: int) -> int:
    best = 0
    for stub_at, orig_at in spans:
        if stub_at > offset:
            break
        best = orig_at + (offset - stub_at)
    return best


def _located(reason: str, expansion: Expansion, offset: int) -> GrokError:
    name, pos = expansion.locate(offset)
    return GrokError(reason, pattern=name, position=pos, text=expansion.sources.get(name))


def cached_compile(expression: str, *, ecs_compatibility: str = "disabled",
                   patterns_dir: Sequence[str] | None = None,
                   pattern_definitions: Mapping[str, str] | None = None, patterns_files_glob: str = "*",
                   named_captures_only: bool = True, keep_empty_captures: bool = False) -> Compiled:
    mode_dir(ecs_compatibility)
    key = (expression, ecs_compatibility, tuple(patterns_dir or ()), patterns_files_glob,
           tuple(sorted((str(k), str(v)) for k, v in (pattern_definitions or {}).items())),
           named_captures_only, keep_empty_captures)
    hit = _CACHE.get(key)
    if hit is not None and not patterns_dir:
        return hit
    defs = definitions_for(ecs_compatibility, patterns_dir, pattern_definitions, patterns_files_glob)
    compiled = compile_expression(expression, defs, named_captures_only=named_captures_only,
                                  keep_empty_captures=keep_empty_captures)
    with _CACHE_LOCK:
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.clear()
        _CACHE[key] = compiled
    return compiled


class Grok:
    """A compiled grok expression (or a list of them, tried in order).

    `match(text)` returns the captures as a nested dict (`[a][b]` and `a.b` names
    nest), `:int`/`:float` applied, or None. Unmatched optional captures are absent
    unless `keep_empty_captures`. A failed coercion leaves the string and returns a
    `GrokCaptures` whose `coerce_failures` says what failed. With `timeout`
    (seconds), a match that runs longer raises `GrokTimeout` (see `watchdog`).
    """

    def __init__(self, pattern: str | Sequence[str], *, patterns_dir: str | Sequence[str] | None = None,
                 pattern_definitions: Mapping[str, str] | None = None, ecs_compatibility: str = "disabled",
                 named_captures_only: bool = True, keep_empty_captures: bool = False,
                 timeout: float | None = None, patterns_files_glob: str = "*") -> None:
        expressions = [pattern] if isinstance(pattern, str) else list(pattern)
        if not expressions:
            raise GrokError("no pattern given")
        dirs = [patterns_dir] if isinstance(patterns_dir, str) else list(patterns_dir or [])
        self.ecs_compatibility = ecs_compatibility
        self.timeout = timeout
        self.compiled = [
            cached_compile(str(e), ecs_compatibility=ecs_compatibility, patterns_dir=dirs,
                           pattern_definitions=pattern_definitions, patterns_files_glob=patterns_files_glob,
                           named_captures_only=named_captures_only, keep_empty_captures=keep_empty_captures)
            for e in expressions
        ]
        self._matchers = [c.match for c in self.compiled]
        if timeout is None and len(self._matchers) == 1:
            # The hot path: the generated function itself, no wrapper call.
            self.match = self._matchers[0]  # type: ignore[method-assign,assignment]

    @property
    def regex(self) -> re.Pattern[str]:
        """The compiled Python regex of the first expression."""
        return self.compiled[0].regex

    def match(self, text: str) -> dict[str, Any] | None:
        """Captures of the first expression that matches `text`, or None."""
        if self.timeout is None:
            for fn in self._matchers:
                result = fn(text)
                if result is not None:
                    return result
            return None
        return self.match_guarded(text, self.timeout)

    def match_guarded(self, text: str, timeout: float) -> dict[str, Any] | None:
        """`match` bounded by `timeout` seconds; raises GrokTimeout."""
        if watchdog.is_armed() and threading.current_thread() is threading.main_thread():
            for fn in self._matchers:
                result = fn(text)
                if result is not None:
                    return result
            return None
        if watchdog.signals_usable():
            with watchdog.single_guard(timeout):
                for fn in self._matchers:
                    result = fn(text)
                    if result is not None:
                        return result
            return None
        return self._match_regex_module(text, timeout)

    def search(self, text: str) -> Any:
        """The match object of the first expression that matches (for tools that need
        spans), bounded by `timeout` like `match`; None when nothing matches."""
        if self.timeout is not None and not watchdog.is_armed():
            if watchdog.signals_usable():
                with watchdog.single_guard(self.timeout):
                    return self._search_re(text)
            for compiled in self.compiled:
                m = compiled.bounded_search(text, self.timeout)
                if m is not None:
                    return m
            return None
        return self._search_re(text)

    def _search_re(self, text: str) -> Any:
        for compiled in self.compiled:
            m = compiled.regex.search(text)
            if m is not None:
                return m
        return None

    def _match_regex_module(self, text: str, timeout: float) -> dict[str, Any] | None:
        for compiled in self.compiled:
            m = compiled.bounded_search(text, timeout)
            if m is not None:
                return compiled.extract(m)
        return None
