"""Getting events out of a pipeline inside a Python program.

`CallbackOutput` is an ordinary output whose destination is your function (sync
or async) — or, with no function, a list you read afterwards. It goes through the
same buffer and acknowledgement machinery as any output, so `delivered()` means
your callback has returned.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from logpipe.event import Event
from logpipe.plugin import Output, WriteResult


class CallbackOutput(Output):
    name = "callback"
    doc = "Hands each batch to a Python callable (embedding only)."
    buffer_defaults = {"flush_interval": 0.0}

    def __init__(self, callback: Callable[[list[Event]], Any] | None = None, **settings: Any) -> None:
        super().__init__(**settings)
        self.events: list[Event] = []
        self._callback = callback if callback is not None else self.events.extend

    async def write(self, events: list[Event]) -> WriteResult | None:
        result = self._callback(events)
        if inspect.isawaitable(result):
            await result
        return None
