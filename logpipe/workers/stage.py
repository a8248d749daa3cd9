"""The per-event work of a batch, as a worker process does it: filters → routing → chunk
keys → `format` (ARCHITECTURE.md, "Parallel pipeline").

Built by the same functions as the single-process pipeline (logpipe/build.py) from the
same sections, so a worker's filter chain, output ids and chunk keys are those of the
main process; ids are assigned the same way (they are unique per kind, so the inputs the
worker does not build change nothing).
"""

from __future__ import annotations

import traceback
from typing import Any

from logpipe import registry
from logpipe.buffer.keys import KeyFn, compile_key_fn, group_events
from logpipe.buffer.runner import format_events
from logpipe.buffer.settings import resolve_buffer_config
from logpipe.build import Built, assign_unique_ids, compile_filters, compile_outputs
from logpipe.helpers import ecs
from logpipe.plugin import Plugin
from logpipe.workers.spec import WorkerSpec
from logpipe.workers.wire import OutputPart, Result, columns, decode_batch, encode_result


class Stage:
    def __init__(self, spec: WorkerSpec) -> None:
        for (_, name), cls in spec.registered.items():
            registry.register(cls, name=name)
        ecs.set_default_mode(spec.ecs_mode)
        self.built = Built([], [], [])
        self._filter = compile_filters(spec.filters, self.built)
        self._route = compile_outputs(spec.outputs, self.built)
        plugins: list[Plugin] = [*self.built.filters, *self.built.outputs]
        assign_unique_ids(plugins)
        self._outputs = {output.id: output for output in self.built.outputs}
        self._key_fns: dict[str, KeyFn | None] = {}
        for output in self.built.outputs:
            cfg = resolve_buffer_config(output.params, type(output).buffer_defaults)
            self._key_fns[output.id] = compile_key_fn(cfg.chunk_keys, cfg.timekey)

    async def start(self) -> None:
        for plugin in self.built.filters:
            await plugin.lifecycle_start()

    async def close(self) -> None:
        for plugin in self.built.filters:
            try:
                await plugin.lifecycle_close()
            except Exception:  # noqa: BLE001 - closing the others matters more
                plugin.log.exception("closing filter %s failed", plugin.id)

    def process(self, frame: bytes) -> bytes:
        seq, events = decode_batch(frame)
        try:
            events = self._filter(events)
            parts = [self._part(output_id, part) for output_id, part in self._route(events) if part]
        except Exception:  # noqa: BLE001 - reported to the main process, which keeps the batch unacknowledged
            return encode_result(Result(seq, error=traceback.format_exc()))
        return encode_result(Result(seq, len(events), parts))

    def _part(self, output_id: str, events: list[Any]) -> OutputPart:
        output = self._outputs[output_id]
        if output.wants_events:
            return OutputPart(output_id, events=columns(events))
        part = OutputPart(output_id)
        for key, group in group_events(events, self._key_fns[output_id]):
            items, failures = format_events(output, group)
            if items:
                part.groups.append((key, items))
            if failures:
                part.unformatted.append((key, columns([ev for ev, _ in failures]), [why for _, why in failures]))
        return part
