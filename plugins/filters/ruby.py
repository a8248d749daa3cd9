"""Logstash's `ruby` filter, refused: logpipe never runs code from a config file.

It is registered so that a config that uses it gets this explanation and a way forward (a
Python filter plugin) instead of "unknown plugin".
"""

from __future__ import annotations

from typing import Any, ClassVar

from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.plugin import Filter, Setting

MESSAGE = ("the ruby filter runs code from the config, which logpipe never does; write the logic as a Python "
           "filter plugin instead: a subclass of logpipe.plugin.Filter with a filter(events) method, registered "
           "under the \"logpipe.plugins\" entry point as filter.<name> (README: Embedding)")


class RubyFilter(Filter):
    name = "ruby"
    doc = "Refused: logpipe runs no code from configs; write a Python filter plugin (logpipe.plugin.Filter)."
    settings: ClassVar[list[Setting]] = [
        Setting(name, "any") for name in ("code", "init", "path", "script_params", "tag_on_exception",
                                          "tag_with_exception_message")
    ]

    def __init__(self, **settings: Any) -> None:
        raise ConfigError(MESSAGE)

    def filter(self, events: list[Event]) -> list[Event]:
        raise NotImplementedError  # never built
