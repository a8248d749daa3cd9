"""fluent-plugin-rewrite-tag-filter: give an event a new tag from a rule on one of its fields
and route it again from the top, as Fluentd re-emits it.

```
<match app.**>
  @type rewrite_tag_filter
  capitalize_regex_backreference yes
  <rule>
    key     $.kubernetes.namespace_name
    pattern /^(.+)$/
    tag     $1.${tag}
  </rule>
  <rule>
    key     status
    pattern /^200$/
    invert  true
    tag     clear
  </rule>
</match>
```

Rules are tried in order; the first that fires gives the tag. A rule reads its `key` (a field
or a record-accessor path, `$.a.b`, `$['a']['b']`) as text; an empty or missing value skips a
rule unless it is `invert true` (then it fires, as in the plugin). `pattern` is a Ruby regexp
(`/…/i` or bare), searched within the regex time budget (a search over budget skips the
rule and is counted). In the new `tag`: `$1`…`$9` are the rule's captures (capitalized with
`capitalize_regex_backreference`, a missing one is empty), then `${tag}` / `__TAG__` (the tag
with `remove_tag_prefix` or `remove_tag_regexp` taken off), `${tag_parts[N]}`, `${hostname}` /
`__HOSTNAME__` (`hostname_command`: `hostname`, `hostname -s` or `hostname -f`); any other
placeholder becomes empty with a warning — as in the plugin, whose pattern leaves
`__TAG_PARTS[N]__` as written. A rule's `label` sends the event to that `<label>` instead.

Every event this match takes leaves the current pass: an event no rule fires for, or whose tag
would not change (and no `label`), is discarded as Fluentd discards it (counted in
`logpipe_filter_rewrite_tag_discarded_total`); the others go through the filter stage again
from the top with their new tag (logpipe/reemit.py: a rule that keeps matching its own result
is stopped after 32 passes and the event goes to `@ERROR`). In a Logstash config the filter does
the same: the event starts the filter section again with its new tag.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable
from typing import Any, ClassVar

import regex

from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.fields import MISSING, compile_getter
from logpipe.helpers.parsers.base import ruby_regex
from logpipe.helpers.record_accessor import accessor_path
from logpipe.plugin import Filter, Section, Setting
from logpipe.regex_budget import DEFAULT_TIMEOUT

_BACKREF = re.compile(r"\$\d+")
_PLACEHOLDER = re.compile(r"(\$\{[a-z_]+(?:\[[0-9]+\])?\}|__[A-Z_]+__)")
_HOSTNAME_COMMANDS: dict[str, Callable[[], str]] = {
    "hostname": socket.gethostname,
    "hostname -s": lambda: socket.gethostname().split(".")[0],
    "hostname -f": socket.getfqdn,
    "hostname --fqdn": socket.getfqdn,
}


def _text(value: Any) -> str:
    """Ruby's `to_s` of a field value, as the plugin matches it."""
    if value is MISSING or value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return value if isinstance(value, str) else str(value)


def _capitalize(text: str) -> str:
    return text[:1].upper() + text[1:].lower()


class _Rule:
    __slots__ = ("key", "get", "pattern", "invert", "tag", "label")

    def __init__(self, section: Any, where: str) -> None:
        for required in ("key", "pattern", "tag"):
            if not section[required]:
                raise ConfigError(f"<rule> needs a non-empty '{required}'", setting=f"{where}.{required}")
        try:
            self.pattern: regex.Pattern[str] = ruby_regex(str(section["pattern"]), what="<rule> pattern")
        except ConfigError as exc:
            raise ConfigError(exc.message.replace("<parse> ", ""), setting=f"{where}.pattern") from None
        self.key = str(section["key"])
        self.get = compile_getter(accessor_path(self.key))
        self.invert: bool = section["invert"]
        self.tag = str(section["tag"])
        if re.search(r"\$\{tag_parts\[\d\.\.\.?\d\]\}|__TAG_PARTS\[\d\.\.\.?\d\]__", self.tag):
            raise ConfigError("${tag_parts[n]} and __TAG_PARTS[n]__ do not take a range", setting=f"{where}.tag")
        self.label: str | None = section["label"] or None

    def identity(self) -> str:
        return f"{self.key}{'!' if self.invert else ''}{self.pattern.pattern}"


class RewriteTagFilter(Filter):
    name = "rewrite_tag_filter"
    creates_events = False
    reemits = True
    doc = "fluent-plugin-rewrite-tag-filter: a new tag from <rule>s, routed again from the top."
    settings: ClassVar[list[Setting]] = [
        Section("rule", [
            Setting("key", "string", required=True, doc="the field tested (record_accessor paths: $.a.b)"),
            Setting("pattern", "string", required=True, doc="Ruby regexp searched in the field's text"),
            Setting("tag", "string", required=True,
                    doc="the new tag: $N, ${tag}, __TAG__, ${tag_parts[N]}, ${hostname}"),
            Setting("invert", "bool", default=False, doc="the rule applies when the pattern does not match"),
            Setting("label", "string", doc="route the re-tagged event into this <label>"),
        ], multiple=True, required=True, doc="one rewrite rule; the first that applies wins",
            example="<rule> key message pattern ^ERROR tag error.${tag} </rule>"),
        Setting("capitalize_regex_backreference", "bool", default=False, doc="capitalize each $N"),
        Setting("remove_tag_prefix", "string", doc="taken off the tag (and the dot after it) for ${tag}"),
        Setting("remove_tag_regexp", "string", doc="regexp taken off the tag for ${tag}"),
        Setting("hostname_command", "string", default="hostname",
                doc="hostname for ${hostname}: 'hostname', 'hostname -s' or 'hostname -f'"),
        Setting("emit_mode", "string", default="batch", choices=("batch", "record"),
                doc="accepted: events are re-emitted in order either way"),
        *[Setting(f"rewriterule{n}", "string", doc="dropped by the plugin: use <rule>") for n in range(1, 21)],
    ]

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        p = self.params
        for n in range(1, 21):
            if p.get(f"rewriterule{n}") is not None:
                raise ConfigError('"rewriterule<num>" support has been dropped. Use <rule> section instead.',
                                  setting=f"rewriterule{n}")
        sections = p["rule"]
        self._rules = [_Rule(section, f"rule[{i}]" if len(sections) > 1 else "rule")
                       for i, section in enumerate(sections)]
        if not self._rules:
            raise ConfigError("missing rewriterules: write at least one <rule>", setting="rule")
        identities = [r.identity() for r in self._rules]
        if len(set(identities)) != len(identities):
            raise ConfigError("duplicated rewriterules found (two <rule>s with the same key, invert and pattern)",
                              setting="rule")
        if p["remove_tag_prefix"] and p["remove_tag_regexp"]:
            raise ConfigError("remove_tag_prefix and remove_tag_regexp are exclusive", setting="remove_tag_regexp")
        self._remove: regex.Pattern[str] | None = None
        if p["remove_tag_prefix"]:
            self._remove = regex.compile("^" + regex.escape(p["remove_tag_prefix"]) + r"\.?")
        elif p["remove_tag_regexp"]:
            try:
                self._remove = ruby_regex(p["remove_tag_regexp"], what="remove_tag_regexp")
            except ConfigError as exc:
                raise ConfigError(exc.message.replace("<parse> ", ""), setting="remove_tag_regexp") from None
        command = " ".join(str(p["hostname_command"]).split())
        if command not in _HOSTNAME_COMMANDS:
            raise ConfigError(f"hostname_command {command!r} is not run: logpipe runs no commands from configs; "
                              f"it knows {', '.join(repr(c) for c in _HOSTNAME_COMMANDS)}",
                              setting="hostname_command")
        self._hostname = _HOSTNAME_COMMANDS[command]()
        self._capitalize: bool = p["capitalize_regex_backreference"]
        self._discarded = self.metrics.counter("rewrite_tag_discarded", "events no rule gave a new tag")
        self._timeouts = self.metrics.counter("rewrite_tag_regex_timeouts", "rule searches over the time budget")
        self._placeholders_cache: dict[str, dict[str, str]] = {}

    def _placeholders(self, tag: str) -> dict[str, str]:
        found = self._placeholders_cache.get(tag)
        if found is not None:
            return found
        base = self._remove.sub("", tag, count=1) if self._remove is not None else tag
        found = {"__HOSTNAME__": self._hostname, "${hostname}": self._hostname, "__TAG__": base, "${tag}": base}
        for index, part in enumerate(base.split(".")):
            found[f"${{tag_parts[{index}]}}"] = part
        if len(self._placeholders_cache) > 4096:
            self._placeholders_cache.clear()
        self._placeholders_cache[tag] = found
        return found

    def _expand(self, template: str, captures: tuple[str | None, ...] | None, tag: str) -> str:
        """`$N` (not for an invert rule: `captures` None), then the tag placeholders."""
        if captures is not None:
            capitalize = self._capitalize

            def backref(m: re.Match[str]) -> str:
                n = int(m.group()[1:])
                value = captures[n - 1] if 1 <= n <= len(captures) else None
                if value is None:
                    return ""
                return _capitalize(value) if capitalize else value

            template = _BACKREF.sub(backref, template)
        table = self._placeholders(tag)

        def placeholder(m: re.Match[str]) -> str:
            value = table.get(m.group(1))
            if value is None:
                self.log.warning("rewrite_tag_filter: unknown placeholder found. :placeholder=>%s :tag=>%s "
                                 ":rewritetag=>%s", m.group(1), tag, template)
                return ""
            return value

        return _PLACEHOLDER.sub(placeholder, template)

    def _rewrite(self, ev: Event) -> tuple[str | None, str | None]:
        for rule in self._rules:
            value = _text(rule.get(ev))
            if not value and not rule.invert:
                continue
            try:
                m = rule.pattern.search(value, timeout=DEFAULT_TIMEOUT)
            except TimeoutError:
                self._timeouts.inc()
                continue
            if rule.invert:
                if m is not None:
                    continue
                return self._expand(rule.tag, None, ev.tag), rule.label
            if m is None:
                continue
            return self._expand(rule.tag, m.groups(), ev.tag), rule.label
        return None, None

    def filter(self, events: list[Event]) -> list[Event]:
        again: list[Event] = []
        for ev in events:
            tag, label = self._rewrite(ev)
            if (tag is None or tag == ev.tag) and label is None:
                self._discarded.inc()
                self.log.debug("rewrite_tag_filter: tag has not been rewritten %r", ev.record)
                continue
            if tag is not None:
                ev.tag = tag
            if label is not None:
                ev.meta["_label"] = label
            if self._decorate is not None:
                self._decorate(ev)
            again.append(ev)
        if again and not self.reemit(again):
            return again  # outside a pipeline (a test driver): hand them on
        return []
