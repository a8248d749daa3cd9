"""The grok filter: Logstash's grok, with Fluentd's `format` / `<parse>` as an alternative.

Logstash semantics: `match` maps a source field to one pattern or a list; patterns
are tried in order and, with `break_on_match` (default), the first match wins.
Captures are merged into the event (or under `target`) like Logstash's grok: a
field that already holds a string becomes an array of both values unless it is
listed in `overwrite`; empty captures are skipped unless `keep_empty_captures`.
No match → `tag_on_failure`; a match over its `timeout_millis` budget →
`tag_on_timeout` (and nothing else, as in Logstash); a `:int`/`:float` capture
that is not a number (`:int` on "3.5") keeps its text and the event gets
`tag_on_coerce_failure` (`_grokcoercefailure`, a logpipe addition: Logstash
silently truncates such values with Ruby's to_i).

`timeout_millis` defaults to 2000 ms rather than Logstash's 30000: a normal grok
match takes microseconds, so 2 s is already a million times the norm, while a
30 s stall per event would freeze the whole pipeline behind it (the queues are
bounded). 0 disables the budget. How the budget is enforced without slowing the
common path is explained in `logpipe.grok.watchdog`.

Fluentd: `format apache2` (a named format, see `logpipe.grok.formats`), a
`/regexp/` or a grok expression, or a `<parse>` section (`@type apache2`,
`@type regexp` + `expression`, `@type grok` + `grok_pattern`) parses `key_name`
(default `message`). In that form `match` may carry the tag globs of a Fluentd
`<filter>` directive.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any, ClassVar

from logpipe.errors import GrokError, GrokTimeout
from logpipe.fields import MISSING, add_tag, compile_getter, compile_setter, parse_ref
from logpipe.grok import watchdog
from logpipe.grok.diagnose import diagnose
from logpipe.grok.engine import Grok
from logpipe.grok.extract import GrokCaptures, IntoFn, capture_path
from logpipe.grok.formats import NAMED_FORMATS, compile_named_format
from logpipe.grok.library import implicit_patterns_dirs
from logpipe.helpers import ecs
from logpipe.plugin import ConfigError, Event, Filter, Setting

MatchFn = Callable[[str], "dict[str, Any] | None"]
_SPECIAL = ("@metadata", "@timestamp")


RECENT_FAILURES = 10
RECENT_CHARS = 1024

class GrokFilter(Filter):
    name = "grok"
    creates_events = False
    doc = "Parse unstructured text into fields with grok patterns (Logstash grok; Fluentd formats)."
    settings: ClassVar[list[Setting]] = [
        Setting("match", "any", default={}, doc="field => pattern or list of patterns (Logstash); "
                "with format/parse: tag globs"),
        Setting("break_on_match", "bool", default=True, doc="stop at the first pattern that matches"),
        Setting("named_captures_only", "bool", default=True, doc="keep only %{PATTERN:name} captures"),
        Setting("keep_empty_captures", "bool", default=False, doc="keep captures that matched nothing"),
        Setting("overwrite", "array", default=[], doc="fields to overwrite instead of appending to"),
        Setting("patterns_dir", "array", default=[], doc="folders (or files) of extra pattern definitions"),
        Setting("patterns_files_glob", "string", default="*", doc="which files of patterns_dir to read"),
        Setting("pattern_definitions", "hash", default={}, doc="inline NAME => REGEX definitions"),
        Setting("tag_on_failure", "array", default=["_grokparsefailure"], doc="tags added when nothing matched"),
        Setting("tag_on_timeout", "string", default="_groktimeout", doc="tag added when a match timed out"),
        Setting("tag_on_coerce_failure", "string", default="_grokcoercefailure",
                doc="tag added when an :int/:float capture is not a number (the text is kept)"),
        Setting("timeout_millis", "int", default=2000, doc="budget per event for matching; 0 disables"),
        Setting("explain_failures", "bool", default=False,
                doc="on no match, put why in [@metadata][_parse_failure]: the pattern, how far it matched, "
                    "the column where the line diverged (costs a few ms per failing event)"),
        Setting("target", "string", doc="put captures under this field instead of the event root"),
        Setting("ecs_compatibility", "string", choices=ecs.MODES,
                doc="pattern set: legacy names (disabled) or ECS field names (v1, v8)"),
        Setting("format", "string", doc="Fluentd: a named format (apache2, nginx, syslog …), /regexp/ or grok"),
        Setting("parse", "hash", doc="Fluentd <parse> section: @type and its options"),
        Setting("key_name", "string", default="message", doc="Fluentd: the field format/parse reads"),
    ]

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        p = self.params
        raw_match = p["match"]
        fluentd = p["format"] is not None or p["parse"] is not None
        self._tag_globs: list[str] | None = None
        if fluentd:
            patterns = {p["key_name"]: [self._fluentd_expression()]}
            # `match` here is a Fluentd <filter> tag pattern (see tag_patterns).
            self._tag_globs = _tag_globs(raw_match)
        else:
            patterns = _pattern_map(raw_match)
        if not patterns:
            raise ConfigError("grok needs 'match' (field => pattern) or a Fluentd 'format'/'parse'",
                              setting="match")
        self.patterns = patterns
        self.timeout = p["timeout_millis"] / 1000.0 if p["timeout_millis"] > 0 else None
        self.groks = {f: self._compile(f, exprs) for f, exprs in patterns.items()}
        self._plan = [(compile_getter(f), [c.match for c in g.compiled]) for f, g in self.groks.items()]
        self._safe_plan = [(getter, [_regex_module_matcher(c, self.timeout or 0.0) for c in g.compiled])
                           for (getter, _), g in zip(self._plan, self.groks.values())]
        self._merge = self._build_merge()
        self._single = self._single_field()
        self._failure_tags = list(p["tag_on_failure"])
        self._matches = self.metrics.counter("grok_matches", "events grok matched")
        self._failures = self.metrics.counter("grok_failures", "events grok did not match")
        self._timeouts = self.metrics.counter("grok_timeouts", "events whose grok match timed out")
        # Per pattern: which of a filter's patterns the lines match (labels bounded by the config).
        self._pattern_hits: dict[Any, Any] = {}
        for (_, fast), (_, safe), (fld, g) in zip(self._plan, self._safe_plan, self.groks.items(), strict=True):
            for fast_fn, safe_fn, c in zip(fast, safe, g.compiled, strict=True):
                hits = self.metrics.counter("grok_pattern_matches", "events each grok pattern matched",
                                            field=fld, pattern=c.expression[:200])
                self._pattern_hits[fast_fn] = self._pattern_hits[safe_fn] = hits
        only = {id(c) for c in self._pattern_hits.values()}
        self._only_pattern = next(iter(self._pattern_hits.values())) if len(only) == 1 else None
        self._explain = bool(p["explain_failures"])
        #: The last failing values (truncated), for /stats: what production lines do not match.
        self.recent_failures: deque[str] = deque(maxlen=RECENT_FAILURES)

    def tag_patterns(self) -> list[str] | None:
        """Grok's `match` is a pattern map, except in the Fluentd form (format/parse),
        where it carries the <filter> directive's tag globs."""
        return self._tag_globs or super().tag_patterns()

    # -- construction ----------------------------------------------------------------
    def _fluentd_expression(self) -> str:
        p = self.params
        if p["format"] is not None:
            return _format_expression(p["format"], "format")
        parse = p["parse"]
        kind = parse.get("@type", parse.get("type"))
        if kind in ("grok", "multiline_grok"):
            pattern = parse.get("grok_pattern") or parse.get("pattern")
            if not pattern:
                raise ConfigError("<parse> @type grok needs 'grok_pattern'", setting="parse")
            return str(pattern)
        if kind == "regexp":
            expression = parse.get("expression")
            if not expression:
                raise ConfigError("<parse> @type regexp needs 'expression'", setting="parse")
            return _format_expression(str(expression), "parse")
        if kind is None:
            raise ConfigError("<parse> needs '@type'", setting="parse")
        return _format_expression(str(kind), "parse")

    def _compile(self, field: str, expressions: list[str]) -> Grok:
        p = self.params
        try:
            dirs = implicit_patterns_dirs() + list(p["patterns_dir"])
            return Grok(expressions, patterns_dir=dirs, pattern_definitions=p["pattern_definitions"],
                        ecs_compatibility=p["ecs_compatibility"], named_captures_only=p["named_captures_only"],
                        keep_empty_captures=p["keep_empty_captures"], patterns_files_glob=p["patterns_files_glob"])
        except GrokError as exc:
            setting = "match"
            if exc.pattern is not None and exc.pattern in p["pattern_definitions"]:
                setting = "pattern_definitions"
            elif "patterns_dir" in exc.reason or "pattern file" in exc.reason:
                setting = "patterns_dir"
            if self.params["format"] is not None or self.params["parse"] is not None:
                setting = "format" if self.params["format"] is not None else "parse"
            raise ConfigError(f"grok pattern for field '{field}': {exc}", setting=setting) from None

    def _build_merge(self) -> Callable[[Event, dict[str, Any]], None]:
        overwrite = frozenset(capture_path(str(f)) for f in self.params["overwrite"])
        special = any(e.path[0] in _SPECIAL for g in self.groks.values() for c in g.compiled for e in c.entries)
        target = self.params["target"]
        if target:
            get_target = compile_getter(target)
            set_target = compile_setter(target)
            tpath = parse_ref(target)
            if tpath[0] == "@timestamp":
                raise ConfigError("target cannot be @timestamp", setting="target")

            def merge_target(ev: Event, caps: dict[str, Any]) -> None:
                box = get_target(ev)
                if type(box) is not dict:
                    box = {}
                    set_target(ev, box)
                _merge_into(box, caps, overwrite, ())
            return merge_target
        if special:
            set_ts = compile_setter("@timestamp")

            def merge_special(ev: Event, caps: dict[str, Any]) -> None:
                for k, v in caps.items():
                    if k == "@metadata" and type(v) is dict:
                        _merge_into(ev.meta, v, overwrite, ("@metadata",))
                    elif k == "@timestamp":
                        set_ts(ev, v[-1] if type(v) is list else v)
                    else:
                        _merge_into(ev.record, {k: v}, overwrite, ())
            return merge_special
        if overwrite:
            return lambda ev, caps: _merge_into(ev.record, caps, overwrite, ())

        def merge_fast(ev: Event, caps: dict[str, Any]) -> None:
            rec = ev.record
            if rec.keys().isdisjoint(caps):
                rec.update(caps)
                return
            for k, v in caps.items():
                if k in rec:
                    _merge_into(rec, {k: v}, overwrite, ())
                else:
                    rec[k] = v
        return merge_fast

    def _single_field(self) -> tuple[str, IntoFn] | None:
        """The common shape — one top-level field, one pattern, captures merged at the
        root — gets a dedicated loop (see `_run_single`)."""
        if len(self._plan) != 1 or len(self._plan[0][1]) != 1 or self.params["target"] \
                or self.params["overwrite"] or self._merge.__name__ != "merge_fast":
            return None
        path = parse_ref(next(iter(self.groks)))
        if len(path) != 1 or path[0] in _SPECIAL:
            return None
        return path[0], next(iter(self.groks.values())).compiled[0].into

    # -- the batch path ----------------------------------------------------------------
    def filter(self, events: list[Event]) -> list[Event]:
        if not events:
            return events
        timeout = self.timeout
        if timeout is None:
            self._dispatch(events, self._plan, [0])
        elif watchdog.signals_usable():
            with watchdog.batch_guard(timeout) as cell:
                self._dispatch(events, self._plan, cell)
        else:
            self._run(events, self._safe_plan, [0])
        return events

    def _dispatch(self, events: list[Event], plan: list[tuple[Callable[[Event], Any], list[MatchFn]]],
                  cell: list[int]) -> None:
        if self._single is not None:
            self._run_single(events, cell)
        else:
            self._run(events, plan, cell)

    def _run_single(self, events: list[Event], cell: list[int]) -> None:
        """One string field, one pattern: the per-event path is a dict lookup and the
        generated matcher writing straight into the record (no intermediate dict)."""
        key, into = self._single  # type: ignore[misc]
        decorate = self.matched if self.decorates else None
        failure_tags = self._failure_tags
        coerce_tag = self.params["tag_on_coerce_failure"]
        timeout_tag = self.params["tag_on_timeout"]
        matched_n = failed_n = timeout_n = 0
        for ev in events:
            cell[0] += 1
            rec = ev.record
            value = rec.get(key)
            if type(value) is not str:
                self._run([ev], self._plan, cell)
                continue
            try:
                result = into(value, rec)
            except GrokTimeout:
                timeout_n += 1
                add_tag(ev, timeout_tag)
                self._log_timeout(ev)
                continue
            if result is None:
                failed_n += 1
                for tag in failure_tags:
                    add_tag(ev, tag)
                self._failed(ev, value)
                continue
            if result is not True:
                add_tag(ev, coerce_tag)
            matched_n += 1
            if decorate is not None:
                decorate(ev)
        self._count(matched_n, failed_n, timeout_n)

    def _log_timeout(self, ev: Event) -> None:
        self.log.warning("grok gave up after %s ms (timeout_millis) on event %s", self.params["timeout_millis"],
                         _preview(ev))

    def _count(self, matched_n: int, failed_n: int, timeout_n: int, by_pattern: dict[Any, int] | None = None) -> None:
        if matched_n:
            self._matches.inc(matched_n)
            if by_pattern is None and self._only_pattern is not None:  # the one-pattern fast path
                self._only_pattern.inc(matched_n)
        for fn, n in (by_pattern or {}).items():
            self._pattern_hits[fn].inc(n)
        if failed_n:
            self._failures.inc(failed_n)
        if timeout_n:
            self._timeouts.inc(timeout_n)

    def _run(self, events: list[Event], plan: list[tuple[Callable[[Event], Any], list[MatchFn]]],
             cell: list[int]) -> None:
        merge = self._merge
        break_on_match = self.params["break_on_match"]
        decorate = self.matched if self.decorates else None
        failure_tags = self._failure_tags
        coerce_tag = self.params["tag_on_coerce_failure"]
        matched_n = failed_n = timeout_n = 0
        by_pattern: dict[Any, int] = {}
        for ev in events:
            cell[0] += 1
            try:
                matched = False
                for getter, matchers in plan:
                    value = getter(ev)
                    if value is MISSING or value is None:
                        continue
                    for text in (value,) if type(value) is str else _texts(value):
                        for fn in matchers:
                            caps = fn(text)
                            if caps is not None:
                                matched = True
                                by_pattern[fn] = by_pattern.get(fn, 0) + 1
                                if type(caps) is GrokCaptures:
                                    add_tag(ev, coerce_tag)
                                merge(ev, caps)
                                if break_on_match:
                                    break
                    if matched and break_on_match:
                        break
            except GrokTimeout:
                timeout_n += 1
                add_tag(ev, self.params["tag_on_timeout"])
                self._log_timeout(ev)
                continue
            if matched:
                matched_n += 1
                if decorate is not None:
                    decorate(ev)
            else:
                failed_n += 1
                for tag in failure_tags:
                    add_tag(ev, tag)
                self._failed(ev, None)
        self._count(matched_n, failed_n, timeout_n, by_pattern)

    def _failed(self, ev: Event, value: Any) -> None:
        """Remember the line; explain it when asked (opt-in: diagnosis compiles pattern prefixes)."""
        if value is None:
            value = next((v for getter, _ in self._plan if type(v := getter(ev)) is str), None)
        if type(value) is not str:
            return
        self.recent_failures.append(value[:RECENT_CHARS])
        if self._explain:
            ev.meta["_parse_failure"] = self.explain(value)

    def explain(self, line: str) -> dict[str, Any]:
        """Why `line` matches none of this filter's patterns: the pattern that got furthest."""
        best: dict[str, Any] = {"plugin": self.id}
        options = {"ecs_compatibility": self.params["ecs_compatibility"], "patterns_dir": self.params["patterns_dir"],
                   "pattern_definitions": self.params["pattern_definitions"]}
        for grok in self.groks.values():
            for compiled in grok.compiled:
                try:
                    d = diagnose(compiled.expression, line, **options)
                except (GrokError, GrokTimeout):
                    continue
                if "column" not in best or d.end + 1 > best["column"]:
                    best.update(pattern=compiled.expression, matched_prefix=d.prefix, expected=d.expected,
                                column=d.end + 1, consumed=line[d.start:d.end])
        return best

    def stats(self) -> dict[str, Any]:
        return {"recent_failures": list(self.recent_failures)}


def _merge_into(container: dict[str, Any], caps: dict[str, Any], overwrite: frozenset[tuple[str, ...]],
                prefix: tuple[str, ...]) -> None:
    """Logstash grok's `handle`: set when absent or null, append to an array,
    promote a string to an array, overwrite when asked; other values are left alone."""
    for k, v in caps.items():
        path = prefix + (k,)
        old = container.get(k, MISSING)
        if type(v) is dict:
            if type(old) is dict and path not in overwrite:
                _merge_into(old, v, overwrite, path)
            elif old is MISSING or old is None or path in overwrite:
                container[k] = v
            continue
        if path in overwrite:
            container[k] = v
            continue
        for item in (v if type(v) is list else (v,)):
            old = container.get(k, MISSING)
            if old is MISSING or old is None:
                container[k] = item
            elif type(old) is list:
                old.append(item)
            elif type(old) is str:
                container[k] = [old, item]


def _texts(value: Any) -> list[str]:
    """Logstash matches each element of an array field, and the text form of anything else."""
    if type(value) is list:
        return [v if type(v) is str else str(v) for v in value if v is not None]
    return [str(value)]


def _preview(ev: Event) -> str:
    text = repr(ev.record)
    return text if len(text) <= 200 else text[:200] + "…"


def _regex_module_matcher(compiled: Any, timeout: float) -> MatchFn:
    """The same expression on the `regex` module with its own timeout, for threads
    where the SIGALRM watchdog cannot run."""
    extract = compiled.extract

    def match(text: str) -> dict[str, Any] | None:
        m = compiled.bounded_search(text, timeout)
        return None if m is None else extract(m)

    return match


def _pattern_map(raw: Any) -> dict[str, list[str]]:
    """`match` as Logstash accepts it: a hash, or a flat [field, pattern, …] array."""
    if isinstance(raw, dict):
        items = list(raw.items())
    elif isinstance(raw, (list, tuple)) and len(raw) % 2 == 0 and all(isinstance(x, (str, list)) for x in raw):
        items = [(raw[i], raw[i + 1]) for i in range(0, len(raw), 2)]
    elif raw in (None, "", []):
        return {}
    else:
        raise ConfigError("setting 'match' expects a hash of field => pattern(s), "
                          "e.g. match => { \"message\" => \"%{COMBINEDAPACHELOG}\" }", setting="match")
    out: dict[str, list[str]] = {}
    for fld, pats in items:
        if not isinstance(fld, str) or not fld:
            raise ConfigError(f"match: field name must be a string, got {fld!r}", setting="match")
        plist = [pats] if isinstance(pats, str) else list(pats)
        if not plist or not all(isinstance(x, str) for x in plist):
            raise ConfigError(f"match: the pattern for '{fld}' must be a string or a list of strings",
                              setting="match")
        parse_ref(fld)
        out.setdefault(fld, []).extend(plist)
    return out


def _tag_globs(raw: Any) -> list[str] | None:
    if raw in (None, {}, []):
        return None
    if isinstance(raw, str):
        return raw.split()
    if isinstance(raw, list) and all(isinstance(x, str) for x in raw):
        return list(raw)
    raise ConfigError("with format/parse, 'match' is a list of tag patterns", setting="match")


def _format_expression(value: str, setting: str) -> str:
    """Fluentd `format`: a named format, `/regexp/`, or (logpipe) a grok expression."""
    if value in NAMED_FORMATS:
        return NAMED_FORMATS[value]
    if len(value) >= 2 and value.startswith("/") and value.rstrip("imx").endswith("/"):
        body = value[1:value.rstrip("imx").rindex("/")]
        flags = value[len(value.rstrip("imx")):]
        return (f"(?{flags})" if flags else "") + body
    if "%{" in value or "(?<" in value:
        return value
    try:
        compile_named_format(value)
    except ConfigError as exc:
        raise ConfigError(exc.message, setting=setting) from None
    return NAMED_FORMATS[value]
