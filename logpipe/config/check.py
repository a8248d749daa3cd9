"""`logpipe check`: every mistake of a config at once, not only the first.

Building a pipeline stops at the first bad plugin; checking instead builds each plugin block on
its own (and compiles each condition), so a config with three typos reports three positioned
errors. Syntax errors still stop the parse: what follows an unbalanced brace has no meaning.
"""

from __future__ import annotations

from collections.abc import Iterable

from logpipe.build import instantiate
from logpipe.config.conditions import compile_condition
from logpipe.config.model import IfNode, PipelineConfig, PluginNode
from logpipe.errors import ConfigError


class ConfigErrors(ConfigError):
    """Several config errors, rendered one after another with a count."""

    def __init__(self, errors: list[ConfigError]) -> None:
        super().__init__(f"{len(errors)} errors")
        self.errors = errors

    def render(self) -> str:
        parts = [e.render() for e in self.errors]
        return "\n".join(parts) + f"\n{len(self.errors)} errors in the configuration"

    def __str__(self) -> str:
        return self.render()


def config_errors(config: PipelineConfig) -> list[ConfigError]:
    """Every plugin and condition error of the config, in config order."""
    errors: list[ConfigError] = []

    def visit(nodes: Iterable[object]) -> None:
        for node in nodes:
            if isinstance(node, PluginNode):
                try:
                    instantiate(node)
                except ConfigError as exc:
                    errors.append(exc)
            elif isinstance(node, IfNode):
                for branch in node.branches:
                    if branch.condition is not None:
                        try:
                            compile_condition(branch.condition)
                        except ConfigError as exc:
                            errors.append(exc)
                    visit(branch.body)

    visit(config.inputs)
    visit(config.filters)
    visit(config.outputs)
    return errors


def check_config(config: PipelineConfig) -> None:
    """Raise ConfigErrors (or the single ConfigError) when the config has mistakes."""
    errors = config_errors(config)
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ConfigErrors(errors)

