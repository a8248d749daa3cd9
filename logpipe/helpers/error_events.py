"""Fluentd's `emit_error_event`: an event a plugin could not handle goes to the `@ERROR` label.

The Fluentd front-end routes on `[@metadata][_label]`, so sending an event to `@ERROR` is
setting that label (and the reason in `[@metadata][_error]`): the output stage then gives it to
`<label @ERROR>`'s matches. When the config has no `@ERROR` label the event is routed nowhere,
as in Fluentd, which only logs "dump an error event"; the warning here is rate-limited and
every error event is counted (`logpipe_filter_error_events_total{filter}`).
"""

from __future__ import annotations

import logging
import time

from logpipe.event import Event
from logpipe.metrics import PluginMetrics

ERROR_LABEL = "@ERROR"


class ErrorEvents:
    """Per-plugin sender of error events."""

    def __init__(self, metrics: PluginMetrics, log: logging.Logger) -> None:
        self._count = metrics.counter("error_events", "events a plugin sent to the @ERROR label")
        self._log = log
        self._metrics = metrics
        self._last_warning = 0.0

    def send(self, ev: Event, reason: str) -> Event:
        """Label the event for @ERROR (in place) and return it."""
        self._count.inc()
        now = time.monotonic()
        if now - self._last_warning >= 1.0:
            self._last_warning = now
            self._log.warning("%s: error event to %s: %s tag=%s record=%.300r", self._metrics.id, ERROR_LABEL,
                              reason, ev.tag, ev.record)
        ev.meta["_label"] = ERROR_LABEL
        ev.meta["_error"] = reason
        return ev
