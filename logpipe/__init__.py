"""logpipe: a Fluentd/Logstash-style log pipeline — daemon, library and grok workbench.

The embedding API in one import: `from logpipe import Pipeline, CallbackOutput, Event, register`;
`ThreadedPipeline` for programs without asyncio, `PipelineHandler` for the stdlib `logging`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = [
    "CallbackOutput", "Event", "If", "Pipeline", "PipelineHandler", "ThreadedPipeline", "__version__", "register",
]

if TYPE_CHECKING:
    from logpipe.compose import If
    from logpipe.embed import CallbackOutput
    from logpipe.embed_logging import PipelineHandler
    from logpipe.embed_thread import ThreadedPipeline
    from logpipe.event import Event
    from logpipe.pipeline import Pipeline
    from logpipe.registry import register


def __getattr__(name: str) -> Any:
    """Lazy: `import logpipe` stays cheap for the CLI and for plugins."""
    if name == "Pipeline":
        from logpipe.pipeline import Pipeline

        return Pipeline
    if name == "CallbackOutput":
        from logpipe.embed import CallbackOutput

        return CallbackOutput
    if name == "If":
        from logpipe.compose import If

        return If
    if name == "register":
        from logpipe.registry import register

        return register
    if name == "PipelineHandler":
        from logpipe.embed_logging import PipelineHandler

        return PipelineHandler
    if name == "ThreadedPipeline":
        from logpipe.embed_thread import ThreadedPipeline

        return ThreadedPipeline
    if name == "Event":
        from logpipe.event import Event

        return Event
    raise AttributeError(name)
