"""Pipelines built in code: conditions and branches around plugin objects.

    from logpipe import If, Pipeline
    from logpipe.registry import create

    def tag(name):
        return create("filter", "mutate", add_tag=[name])

    pipeline = Pipeline(
        filters=[If("[status] >= 500", [tag("error")],
                    elif_=[("[status] >= 400", [tag("client_error")])],
                    else_=[tag("ok")])],
        outputs=[seen])

A condition is a string in the Logstash DSL's syntax, parsed and checked by the same parser as
config files, so a mistake gives the same positioned message; the branches are lists of plugin
objects (or nested `If`s). The result is the node the config front-ends produce, so code and
config compile to the same thing: order, routing and error handling cannot differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from logpipe.config.logstash import parse_condition
from logpipe.config.model import Branch, IfNode
from logpipe.errors import Pos

_CODE = Pos("<code>", 1, 1)


def If(condition: str, then: Sequence[Any], *, elif_: Sequence[tuple[str, Sequence[Any]]] = (),  # noqa: N802
       else_: Sequence[Any] | None = None) -> IfNode:
    """`if condition { then } else if … { … } else { else_ }` over plugin objects (filters or outputs)."""
    branches = [Branch(parse_condition(condition, f"<If {condition!r}>"), list(then), _CODE)]
    branches += [Branch(parse_condition(cond, f"<elif {cond!r}>"), list(body), _CODE) for cond, body in elif_]
    if else_ is not None:
        branches.append(Branch(None, list(else_), _CODE))
    return IfNode(branches, _CODE)
