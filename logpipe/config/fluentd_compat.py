"""Fluentd v0.12 parameters, rewritten into the v1 sections Fluentd itself converts them to.

Real configs still write parsing, buffering and injection flat in the directive:

    <source>                          <source>
      @type tail                        @type tail
      format /^(?<a>\\S+)/       →       <parse> @type regexp expression /^(?<a>\\S+)/
      time_format %d/%b/%Y               time_format %d/%b/%Y </parse>
    <match **>                        <match **>
      buffer_type file           →       <buffer> @type file  path /b  chunk_limit_size 8m </buffer>
      buffer_path /b                     <inject> time_key time  tag_key tag </inject>
      buffer_chunk_limit 8m
      include_time_key true
      include_tag_key true

Fluentd 1.x does the same in its compat helpers (compat_parameters_convert); doing it on the
element tree keeps every moved parameter's position, so a mistake in one still points at its line.
"""

from __future__ import annotations

import re
from typing import Any

from logpipe.config.model import BareWord
from logpipe.errors import ConfigError

#: Plugins whose flat `format` is a parser (v0.12 in_tail, in_tcp, in_udp, in_http, in_exec, filter_parser).
PARSE_PLUGINS = frozenset({"tail", "parser", "tcp", "udp", "http", "exec", "unix"})
#: Flat parser parameters that move into `<parse>` with `format`.
PARSE_KEYS = frozenset({
    "time_key", "time_format", "time_type", "keep_time_key", "types", "null_value_pattern", "null_empty_string",
    "estimate_current_event", "timezone", "format_firstline", "keys", "delimiter", "label_delimiter",
    "message_key", "message_format", "with_priority", "expression", "ignorecase", "grok_pattern",
    "custom_pattern_path", "time_format_fallbacks", "localtime", "utc", "grok_failure_key",
    "rfc5424_time_format", "delimiter_pattern",
})
#: v0.12 buffer parameter → `<buffer>` parameter.
BUFFER_KEYS = {
    "buffer_type": "@type", "buffer_chunk_limit": "chunk_limit_size", "buffer_queue_limit": "queue_limit_length",
    "retry_limit": "retry_max_times", "num_threads": "flush_thread_count", "disable_retry_limit": "retry_forever",
    "max_retry_wait": "retry_max_interval", "time_slice_wait": "timekey_wait",
    "buffer_queue_full_action": "overflow_action", "try_flush_interval": "flush_thread_interval",
    "queued_chunk_flush_interval": "flush_thread_burst_interval", "flush_at_shutdown": "flush_at_shutdown",
}
#: Outputs whose own settings are called include_tag_key/tag_key/time_key (fluent-plugin-elasticsearch).
OWN_INJECT = frozenset({"elasticsearch", "elasticsearch_data_stream", "opensearch"})
INJECT_KEYS = ("include_time_key", "include_tag_key", "time_key", "time_format", "tag_key", "localtime", "utc",
               "timezone")


#: Outputs that take a <format> section, whose v0.12 flat parameters Fluentd copies into one.
FORMAT_PLUGINS = frozenset({"file", "stdout"})
#: compat_parameters' FORMATTER_PARAMS (Fluentd 1.14): flat name → <format> name.
FORMATTER_KEYS = {
    "format": "@type", "delimiter": "delimiter", "force_quotes": "force_quotes", "keys": "keys", "fields": "fields",
    "json_parser": "json_parser", "label_delimiter": "label_delimiter", "output_time": "output_time",
    "output_tag": "output_tag", "localtime": "localtime", "utc": "utc", "timezone": "timezone",
    "message_key": "message_key", "add_newline": "add_newline", "output_type": "output_type",
}
#: Of those, the ones out_file/out_stdout do not declare themselves: moved, not copied.
_FORMATTER_ONLY = frozenset(FORMATTER_KEYS) - {"localtime", "utc"}


def _formatter_section(element: Any) -> None:
    """compat_parameters_formatter: flat formatter parameters → a <format> section (when none is written)."""
    from logpipe.config.fluentd import Element, Param

    params = element.params
    if any(c.name == "format" for c in element.children) or not any(k in params for k in FORMATTER_KEYS):
        return
    first = next(params[k] for k in params if k in FORMATTER_KEYS)
    section = Element("format", "", first.key_pos)
    for key in [k for k in params if k in FORMATTER_KEYS]:
        param = params[key] if key not in _FORMATTER_ONLY else params.pop(key)
        target = FORMATTER_KEYS[key]
        section.params[target] = Param(target, param.value, param.key_pos, param.value_pos)
    time_as_epoch = params.pop("time_as_epoch", None)
    if time_as_epoch is not None and _true(time_as_epoch.value):
        section.params["time_type"] = Param("time_type", BareWord("unixtime"), time_as_epoch.key_pos,
                                            time_as_epoch.value_pos)
    element.children.append(section)


def _text(value: Any) -> str:
    return value.text if isinstance(value, BareWord) else str(value)


def _true(value: Any) -> bool:
    return _text(value).strip().lower() in ("true", "yes", "on")


def timekey_of(slice_format: str) -> str:
    """`time_slice_format %Y%m%d%H` → the v1 `timekey` (its finest unit)."""
    for letter, width in (("S", "1"), ("M", "60"), ("H", "3600"), ("d", "86400"), ("m", "2592000")):
        if f"%{letter}" in slice_format:
            return width
    return "86400"


def upgrade_v012(element: Any, kind: str, name: str) -> None:
    """Rewrite the element in place (an `Element` of logpipe.config.fluentd)."""
    from logpipe.config.fluentd import Element, Param

    params = element.params
    children = element.children
    if kind in ("input", "filter") and name in PARSE_PLUGINS and "format" in params \
            and not any(c.name == "parse" for c in children):
        fmt = params.pop("format")
        section = Element("parse", "", fmt.key_pos)
        text = _text(fmt.value).strip()
        if text.startswith("/"):
            section.params["@type"] = Param("@type", BareWord("regexp"), fmt.key_pos, fmt.value_pos)
            section.params["expression"] = Param("expression", fmt.value, fmt.key_pos, fmt.value_pos)
        else:
            section.params["@type"] = Param("@type", fmt.value, fmt.key_pos, fmt.value_pos)
        for key in list(params):
            if key in PARSE_KEYS or re.fullmatch(r"format\d+", key):
                section.params[key] = params.pop(key)
        children.append(section)
    if kind != "output":
        return
    if name in FORMAT_PLUGINS:
        _formatter_section(element)
    # out_file also names its files with time_slice_format (configured_time_slice_format): it stays.
    kept = params.get("time_slice_format") if name == "file" else None
    moved = [key for key in params if key in BUFFER_KEYS or key == "time_slice_format"]
    if moved:
        buffer = next((c for c in children if c.name == "buffer"), None)
        if buffer is None:
            buffer = Element("buffer", "", params[moved[0]].key_pos)
            children.append(buffer)
        for key in moved:
            param = params.pop(key)
            if key == "time_slice_format":
                keys = [k.strip() for k in buffer.arg.split(",") if k.strip()]
                if "time" not in keys:
                    buffer.arg = ",".join(["time", *keys])
                buffer.params.setdefault("timekey", Param("timekey", BareWord(timekey_of(_text(param.value))),
                                                          param.key_pos, param.value_pos))
                if kept is not None:
                    params["time_slice_format"] = kept
                continue
            target = BUFFER_KEYS[key]
            value = param.value
            if key == "buffer_queue_full_action":
                value = BareWord({"exception": "throw_exception"}.get(_text(value).strip(), _text(value).strip()))
            buffer.params[target] = Param(target, value, param.key_pos, param.value_pos)
    if name in OWN_INJECT or not any(k in params for k in ("include_time_key", "include_tag_key")):
        return
    if any(c.name == "inject" for c in children):
        raise ConfigError("write either include_time_key/include_tag_key or an <inject> section, not both",
                          params.get("include_time_key", params.get("include_tag_key")).key_pos)
    inject = Element("inject", "", element.pos)
    include_time = params.pop("include_time_key", None)
    include_tag = params.pop("include_tag_key", None)
    time_key = params.pop("time_key", None)
    tag_key = params.pop("tag_key", None)
    if include_time is not None and _true(include_time.value):
        inject.params["time_key"] = time_key or Param("time_key", "time", include_time.key_pos, include_time.value_pos)
        inject.params["time_type"] = Param("time_type", "string", include_time.key_pos, include_time.value_pos)
        for key in ("time_format", "localtime", "utc", "timezone"):
            if key in params:
                inject.params[key] = params.pop(key)
    if include_tag is not None and _true(include_tag.value):
        inject.params["tag_key"] = tag_key or Param("tag_key", "tag", include_tag.key_pos, include_tag.value_pos)
    if inject.params:
        children.append(inject)
