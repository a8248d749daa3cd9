"""The plugin API: the one import a plugin author needs.

    from logpipe.plugin import Input, Setting, Section, Event, ConfigError, ServerInput

A plugin declares its settings once (`settings = [Setting(...)]`, sections with
`Section(...)`); that declaration drives validation, positioned error messages,
defaults, the attributes the plugin reads (`self.port`) and `logpipe plugins`.
Plugins are built from their settings alone (`GrokFilter(match={...})`), so a
pipeline can be rebuilt anywhere, and talk to the core only through what this module
exports and the context objects they are handed. Shared machinery comes as helpers
that bring their own settings: list them (`helpers = [TlsClient]`) or extend the
helper's base class (`ServerInput`). See ARCHITECTURE.md, "The plugin API".

Metrics come through the plugin, `self.metrics.counter("tail_lines", doc)`, named
`logpipe_<kind>_<thing>_total` (gauges without `_total`) with the label `<kind>="<id>"`;
helpers are handed the plugin's `metrics` and count under the same label.

The names live in smaller modules (logpipe.base, logpipe.settings, logpipe.errors,
logpipe.event, logpipe.fields, logpipe/helpers/); inside logpipe/helpers import from
those, since this module imports the helpers.
"""

from __future__ import annotations

from logpipe.base import (
    RETRIED,
    TAG_MATCH,
    TAG_MATCH_ALIAS,
    AckCallback,
    Codec,
    Filter,
    Helper,
    Input,
    InputContext,
    Output,
    Plugin,
    WriteResult,
)
from logpipe.errors import ConfigError, LogpipeError, PluginError, ProtocolError, RetryableError
from logpipe.event import Event
from logpipe.fields import (
    add_tag,
    compile_deleter,
    compile_getter,
    compile_setter,
    compile_sprintf,
    delete_field,
    get_field,
    has_sprintf,
    render_value,
    set_field,
)
from logpipe.helpers.server import Server, ServerInput
from logpipe.helpers.timer import Timers
from logpipe.helpers.tls import TlsClient, TlsServer
from logpipe.metrics import PluginMetric, PluginMetrics
from logpipe.settings import Section, SectionValue, Setting

__all__ = [
    "RETRIED", "TAG_MATCH", "TAG_MATCH_ALIAS", "AckCallback", "Codec", "ConfigError", "Event", "Filter",
    "Helper", "Input", "InputContext", "LogpipeError", "Output", "Plugin", "PluginError", "ProtocolError",
    "PluginMetric", "PluginMetrics", "RetryableError",
    "Section", "SectionValue", "Server", "ServerInput", "Setting", "Timers", "TlsClient", "TlsServer",
    "WriteResult", "add_tag", "compile_deleter", "compile_getter", "compile_setter", "compile_sprintf",
    "delete_field", "get_field", "has_sprintf", "render_value", "set_field",
]
