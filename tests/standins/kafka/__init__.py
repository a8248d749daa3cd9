"""A Kafka broker stand-in that speaks the real wire protocol (see broker.py)."""

from .broker import KafkaStandin

__all__ = ["KafkaStandin"]
