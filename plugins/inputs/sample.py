"""Fluentd's `sample` input (formerly `dummy`): the same record(s) at a fixed rate.

```
<source>
  @type sample
  tag sample.data
  sample {"hello": "world"}        # or an array of records, cycled; `dummy` is the old name
  rate 10                          # events per second
  size 1                           # events per emission
  auto_increment_key id            # a counter in each record
</source>
```

`count` (logpipe's addition) stops after that many events, so a config can be a finite test.
"""

from __future__ import annotations

import asyncio
import copy
import time
from typing import Any, ClassVar

import orjson

from logpipe.errors import ConfigError
from logpipe.event import Event
from logpipe.plugin import Input, InputContext, Setting

DEFAULT_SAMPLE = [{"message": "sample"}]


class SampleInput(Input):
    name = "sample"
    doc = "Fluentd in_sample/in_dummy: the `sample` record(s) `rate` times a second."
    settings: ClassVar[list[Setting]] = [
        Setting("sample", "any", doc="a JSON record or an array of records (cycled)"),
        Setting("dummy", "any", doc="v1.10 and older name of `sample`"),
        Setting("rate", "int", 1, min=1, doc="emissions per second"),
        Setting("size", "int", 1, min=1, doc="events per emission"),
        Setting("auto_increment_key", "string", doc="record field holding a counter from 0"),
        Setting("suspend", "bool", False, doc="accepted; the counter restarts with the process"),
        Setting("count", "int", 0, min=0, doc="stop after this many events (0: endless)"),
    ]

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        raw = self.params["sample"] if self.params["sample"] is not None else self.params["dummy"]
        setting = "sample" if self.params["sample"] is not None else "dummy"
        if raw is None:
            records: Any = DEFAULT_SAMPLE
        elif isinstance(raw, str):
            try:
                records = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise ConfigError(f"setting '{setting}' expects a JSON record or array: {exc}",
                                  setting=setting) from None
        else:
            records = raw
        if isinstance(records, dict):
            records = [records]
        if not isinstance(records, list) or not records or not all(isinstance(r, dict) for r in records):
            raise ConfigError(f"setting '{setting}' expects a JSON record or an array of records", setting=setting)
        self._records: list[dict[str, Any]] = records

    @property
    def event_tag(self) -> str:
        return self.params.get("tag") or "sample"

    async def run(self, ctx: InputContext) -> None:
        p = self.params
        rate, size, limit, key = p["rate"], p["size"], p["count"], p["auto_increment_key"]
        records = self._records
        tag = self.event_tag
        emitted = 0
        start = time.monotonic()
        tick = 0
        while limit == 0 or emitted < limit:
            batch: list[Event] = []
            for _ in range(rate):
                for _ in range(size):
                    if limit and emitted >= limit:
                        break
                    record = copy.deepcopy(records[emitted % len(records)])
                    if key:
                        record[key] = emitted
                    batch.append(Event(tag, time.time_ns(), record))
                    emitted += 1
            await ctx.emit(batch, None)
            tick += 1
            await asyncio.sleep(max(0.0, start + tick - time.monotonic()))


class DummyInput(SampleInput):
    """The pre-1.11 name."""

    name = "dummy"
