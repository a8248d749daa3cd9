"""The buffer and retry engine shared by every output (see runner.py)."""

from logpipe.buffer.runner import BufferOverflowError, OutputRunner

__all__ = ["BufferOverflowError", "OutputRunner"]
