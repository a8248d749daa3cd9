"""logpipe: a Fluentd/Logstash-style log pipeline — daemon, library and grok workbench.

The embedding API in one import: `from logpipe import Pipeline, CallbackOutput, Event`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["CallbackOutput", "Event", "Pipeline", "__version__"]

if TYPE_CHECKING:
    from logpipe.embed import CallbackOutput
    from logpipe.event import Event
    from logpipe.pipeline import Pipeline


def __getattr__(name: str) -> Any:
    """Lazy: `import logpipe` stays cheap for the CLI and for plugins."""
    if name == "Pipeline":
        from logpipe.pipeline import Pipeline

        return Pipeline
    if name == "CallbackOutput":
        from logpipe.embed import CallbackOutput

        return CallbackOutput
    if name == "Event":
        from logpipe.event import Event

        return Event
    raise AttributeError(name)
