"""Per-event target names (ES index, Mongo collection) from a template.

Logstash users write sprintf (`logs-%{[service]}-%{+YYYY.MM.dd}`); Fluentd users write
buffer placeholders (`${tag}`, `${tag_parts[1]}`). Both are accepted in the same template,
so a config ported from either front-end keeps working. The result is a function of the
event plus a flag saying whether it is constant, so outputs can skip per-event work and
grouping when it is.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.fields import compile_sprintf, has_sprintf

_TAG_PLACEHOLDER = re.compile(r"\$\{(tag|tag_parts\[(-?\d+)\])\}")

NameFn = Callable[[Event], str]


def compile_target(template: str, setting: str) -> tuple[NameFn, bool]:
    """`(render, constant)`. A malformed reference raises ConfigError naming `setting`."""
    try:
        sprintf = compile_sprintf(template)
    except ConfigError as exc:
        raise ConfigError(exc.message, setting=setting) from exc
    if not _TAG_PLACEHOLDER.search(template):
        return sprintf, not has_sprintf(template)

    def substitute(tag: str, text: str) -> str:
        parts = tag.split(".")

        def placeholder(m: re.Match[str]) -> str:
            if m.group(2) is None:
                return tag
            i = int(m.group(2))
            return parts[i] if -len(parts) <= i < len(parts) else m.group(0)

        return _TAG_PLACEHOLDER.sub(placeholder, text)

    if has_sprintf(template):
        return (lambda ev: substitute(ev.tag, sprintf(ev))), False
    by_tag: dict[str, str] = {}

    def by_tag_only(ev: Event) -> str:
        """Only the tag varies: one substitution per distinct tag."""
        name = by_tag.get(ev.tag)
        if name is None:
            if len(by_tag) >= 4096:
                by_tag.clear()
            name = by_tag[ev.tag] = substitute(ev.tag, template)
        return name

    return by_tag_only, False
