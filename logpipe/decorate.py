"""Logstash's common filter options (filter_matched): add_field, remove_field, add_tag, remove_tag.

Applied, in that order, to every event a filter handled successfully. Everything is compiled when
the filter is built: constant names get their accessors up front, and sprintf is only evaluated
for the parts that contain `%{`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.fields import (
    MISSING,
    TIMESTAMP,
    add_tag,
    compile_deleter,
    compile_getter,
    compile_setter,
    compile_sprintf,
    compile_text,
    delete_field,
    get_field,
    has_sprintf,
    parse_ref,
    runtime_ref,
    set_field,
)

Step = Callable[[Event], None]


def _add_field_step(name: str, value: Any) -> Step:
    """Add one field; when the field already exists the values accumulate into an array
    (Logstash: `add_field` never overwrites). `@timestamp` is the exception: it always exists,
    so accumulating would only ever fail; a value there replaces the event time."""
    values = [compile_text(v) for v in (value if isinstance(value, list) else [value])]
    if has_sprintf(name):
        name_of = compile_sprintf(name)

        def dynamic(ev: Event) -> None:
            ref = runtime_ref(name_of(ev))

            def setter(e: Event, v: Any) -> None:
                set_field(e, ref, v)

            for render in values:
                _accumulate(ev, get_field(ev, ref), setter, render(ev))

        return dynamic
    setter = compile_setter(name)
    if parse_ref(name) == (TIMESTAMP,):  # the event time always exists: a value replaces it
        def set_time(ev: Event) -> None:
            for render in values:
                setter(ev, render(ev))

        return set_time
    getter = compile_getter(name)

    def static(ev: Event) -> None:
        for render in values:
            _accumulate(ev, getter(ev), setter, render(ev))

    return static


def _accumulate(ev: Event, current: Any, setter: Callable[[Event, Any], None], value: str) -> None:
    if current is MISSING:
        setter(ev, value)
    elif current.__class__ is list:
        current.append(value)
    else:
        setter(ev, [current, value])


def _remove_field_step(names: list[str]) -> Step:
    static = [compile_deleter(n) for n in names if not has_sprintf(n)]
    dynamic = [compile_sprintf(n) for n in names if has_sprintf(n)]

    def remove(ev: Event) -> None:
        for deleter in static:
            deleter(ev)
        for name_of in dynamic:
            delete_field(ev, runtime_ref(name_of(ev)))

    return remove


def _add_tag_step(tags: list[str]) -> Step:
    renders = [compile_text(t) for t in tags]
    if all(not has_sprintf(t) for t in tags if isinstance(t, str)):
        constant = [r(Event("")) for r in renders]

        def add_constant(ev: Event) -> None:
            for tag in constant:
                add_tag(ev, tag)

        return add_constant

    def add_rendered(ev: Event) -> None:
        for render in renders:
            add_tag(ev, render(ev))

    return add_rendered


def _remove_tag_step(tags: list[str]) -> Step:
    renders = [compile_text(t) for t in tags]
    constant = None
    if all(not has_sprintf(t) for t in tags if isinstance(t, str)):
        constant = frozenset(r(Event("")) for r in renders)

    def remove(ev: Event) -> None:
        current = ev.record.get("tags")
        if current is None:
            return
        gone = constant if constant is not None else {render(ev) for render in renders}
        # Tags are matched as strings only: a dict or list among them is unhashable, not a crash.
        if current.__class__ is list:
            current[:] = [t for t in current if not (t.__class__ is str and t in gone)]
        elif current.__class__ is str and current in gone:
            ev.record["tags"] = []

    return remove


@contextmanager
def _blame(setting: str) -> Iterator[None]:
    """Attach the option's name to a ConfigError (a malformed field reference), so the loader
    points at the option as written instead of at the plugin."""
    try:
        yield
    except ConfigError as exc:
        if exc.setting is None and exc.pos is None:
            exc.setting = setting
        raise


def build_decorator(
    add_field: dict[str, Any] | None,
    add_tag: list[Any] | None,
    remove_field: list[str] | None,
    remove_tag: list[Any] | None,
) -> Callable[[Event], None] | None:
    """One function applying the four options in Logstash's order (add_field, remove_field,
    add_tag, remove_tag), or None when all are empty so filters can skip the call."""
    steps: list[Step] = []
    with _blame("add_field"):
        if add_field:
            steps.extend(_add_field_step(str(k), v) for k, v in add_field.items())
    with _blame("remove_field"):
        if remove_field:
            steps.append(_remove_field_step([str(n) for n in remove_field]))
    with _blame("add_tag"):
        if add_tag:
            steps.append(_add_tag_step(list(add_tag)))
    with _blame("remove_tag"):
        if remove_tag:
            steps.append(_remove_tag_step(list(remove_tag)))
    if not steps:
        return None
    if len(steps) == 1:
        return steps[0]
    chain = tuple(steps)

    def decorate(ev: Event) -> None:
        for step in chain:
            step(ev)

    return decorate
