"""Fluentd's `grep` filter: keep or drop events by regular expressions on record fields.

```
<filter app.**>
  @type grep
  <regexp>              # kept only if every <regexp> matches
    key message
    pattern /cool/
  </regexp>
  <exclude>             # dropped if any <exclude> matches
    key status
    pattern /^5\\d\\d$/
  </exclude>
  <or> <regexp> … </regexp> <regexp> … </regexp> </or>   # kept if any matches
  <and> <exclude> … </exclude> <exclude> … </exclude> </and>   # dropped if all match
</filter>
```

The v0.12 `regexp1 message cool` / `exclude1 status ^5` forms work too. Values are compared as
text (`to_s`); a missing key never matches. Keys take record_accessor paths (`$.kubernetes.ns`).
Patterns are Ruby regexps (`/…/i` or bare) searched within the regex time budget; a search that
times out counts as no match.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, ClassVar

from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.fields import MISSING, compile_getter
from logpipe.helpers.parsers.base import ruby_regex
from logpipe.plugin import Filter, Section, Setting

Test = Callable[[Event], bool]
_TIMEOUT = 1.0


def _accessor(key: str) -> tuple[str, ...]:
    if key.startswith("$."):
        return tuple(key[2:].split("."))
    if key.startswith("$["):
        return tuple(a or b for a, b in re.findall(r"""\[\s*(?:"([^"]*)"|'([^']*)')\s*\]""", key[1:]))
    return (key,)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _rule(section: Any, where: str) -> Test:
    get = compile_getter(_accessor(str(section["key"])))
    search = ruby_regex(str(section["pattern"]), what=f"<{where}> pattern").search

    def test(ev: Event) -> bool:
        value = get(ev)
        if value is MISSING:
            return False
        try:
            return search(_text(value), timeout=_TIMEOUT) is not None
        except TimeoutError:
            return False

    return test


def _all_of(rules: list[Test]) -> Test:
    return lambda ev: all(t(ev) for t in rules)


def _any_of(rules: list[Test]) -> Test:
    return lambda ev: any(t(ev) for t in rules)


def _flat(value: Any, name: str) -> dict[str, str]:
    """v0.12 `regexp1 key pattern`."""
    key, _, pattern = str(value).strip().partition(" ")
    if not pattern.strip():
        raise ConfigError(f"{name} expects 'KEY PATTERN'", setting=name)
    return {"key": key, "pattern": pattern.strip()}


_RULE = [Setting("key", "string", required=True, doc="the field (record_accessor paths: $.a.b)"),
         Setting("pattern", "string", required=True, doc="Ruby regexp searched in the field's text (/…/i or bare)")]
_COMBINED = [Section("regexp", _RULE, multiple=True, doc="a rule that keeps"),
             Section("exclude", _RULE, multiple=True, doc="a rule that drops")]


class GrepFilter(Filter):
    name = "grep"
    creates_events = False
    doc = "Fluentd filter_grep: <regexp> (all must match), <exclude> (any drops), <and>, <or>, regexpN/excludeN."
    settings: ClassVar[list[Setting]] = [
        Section("regexp", _RULE, multiple=True, doc="every <regexp> must match",
                example="<regexp> key message pattern /error/ </regexp>"),
        Section("exclude", _RULE, multiple=True, doc="any <exclude> that matches drops the event"),
        Section("and", _COMBINED, multiple=True, doc="<regexp>s that all match, or <exclude>s that all match to drop"),
        Section("or", _COMBINED, multiple=True, doc="<regexp>s of which one matches, or <exclude>s of which one drops"),
        *[Setting(f"{kind}{n}", "string", doc=f"v0.12 form of <{kind}>: KEY PATTERN")
          for kind in ("regexp", "exclude") for n in range(1, 21)],
    ]

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        p = self.params
        keep: list[Test] = []
        drop: list[Test] = []
        keep += [_rule(section, "regexp") for section in p["regexp"]]
        drop += [_rule(section, "exclude") for section in p["exclude"]]
        for n in range(1, 21):
            if p.get(f"regexp{n}"):
                keep.append(_rule(_flat(p[f"regexp{n}"], f"regexp{n}"), f"regexp{n}"))
            if p.get(f"exclude{n}"):
                drop.append(_rule(_flat(p[f"exclude{n}"], f"exclude{n}"), f"exclude{n}"))
        for combinator in ("and", "or"):
            for block in p[combinator]:
                regexps = [_rule(s, "regexp") for s in block["regexp"]]
                excludes = [_rule(s, "exclude") for s in block["exclude"]]
                if bool(regexps) == bool(excludes):
                    raise ConfigError(f"<{combinator}> takes either <regexp> or <exclude> sections, not both "
                                      "and not none", setting=combinator)
                rules = regexps or excludes
                (keep if regexps else drop).append(_all_of(rules) if combinator == "and" else _any_of(rules))
        self._keep = keep
        self._drop = drop

    def filter(self, events: list[Event]) -> list[Event]:
        keep, drop = self._keep, self._drop
        return [ev for ev in events if all(t(ev) for t in keep) and not any(t(ev) for t in drop)]
