"""`logpipe plugins NAME`: one plugin in full, from its declaration."""

from __future__ import annotations

from typing import Any

from logpipe import registry
from logpipe.plugin import Filter, Section, Setting
from logpipe.plugin_docs import describe_plugin, describe_plugins


class DeclaredFilter(Filter):
    """Declares one of everything a setting can say."""

    name = "declared_everything"
    doc = "a filter declaring one of everything"
    settings = [
        Setting("level", "int", 3, min=1, max=9, doc="how hard", deprecated_alias="strength",
                spellings=("power",)),
        Setting("mode", "string", "fast", choices=("fast", "exact"), doc="how"),
        Setting("token", "string", "hunter2", secret=True, doc="the API token"),
        Setting("target", "string", required=True, doc="where to write", example="[parsed]"),
        Section("limits", [Setting("rate", "float", 1.5, min=0, doc="events per second"),
                           Section("burst", [Setting("size", "int", 10, doc="burst size")], multiple=True,
                                   doc="one burst rule")],
                doc="<limits> section", example="<limits> rate 2 </limits>"),
    ]

    def filter(self, events: list[Any]) -> list[Any]:
        return events


def test_one_plugin_in_full() -> None:
    registry.register(DeclaredFilter)
    text = describe_plugins("declared_everything")
    assert text == describe_plugin("declared_everything")
    lines = text.splitlines()
    assert lines[0] == "filter declared_everything: a filter declaring one of everything"

    def notes_of(name: str) -> str:
        at = next(i for i, line in enumerate(lines) if line.split()[:1] == [name])
        return lines[at + 1].strip()

    assert notes_of("level") == "default 3; 1 to 9; deprecated names: strength; also spelled power"
    assert notes_of("mode") == "default 'fast'; one of fast, exact"
    assert notes_of("token") == "secret (never shown or logged)"
    assert "hunter2" not in text
    assert notes_of("target") == "required; example: [parsed]"
    assert notes_of("limits") == "example: <limits> rate 2 </limits>"
    indent = {name: len(line) - len(line.lstrip()) for line in lines for name in ("limits", "rate", "burst", "size")
              if line.split()[:1] == [name]}
    assert indent["limits"] < indent["rate"] == indent["burst"] < indent["size"]
    assert "section, repeatable" in next(line for line in lines if line.split()[:1] == ["burst"])
    assert notes_of("rate") == "default 1.5; at least 0"
    assert "settings every filter takes:" in text and "add_tag" in text


def test_helpers_settings_and_every_kind_of_a_name() -> None:
    text = describe_plugin("forward")
    assert text.startswith("input forward:") and "\n\noutput forward:" in text
    assert "settings from the TlsServer helper:" in text and "settings from the Server helper:" in text
    assert "buffer settings" in text.split("output forward:")[1] and "buffer settings" not in \
        text.split("output forward:")[0]
    security = text.splitlines()[[line.split()[:1] for line in text.splitlines()].index(["security"]) + 1]
    assert security.strip() == "example: <security> shared_key s3cret </security>"


def test_a_part_of_a_name_still_lists() -> None:
    text = describe_plugins("elastic")
    assert "output elasticsearch:" in text and "input beats" not in text
    assert "common settings: id;" in text
