"""Events leave the filter stage in the order they entered it (ARCHITECTURE.md, "Order"),
whatever conditionals, split, clone and drop do to a batch."""

from __future__ import annotations

from logpipe.build import Built, compile_filters
from logpipe.config.loader import load_config_string
from logpipe.event import Event
from logpipe.pipeline import Pipeline
from tests.support.pipeline import CollectOutput


def _run_filters(filter_section: str, messages: list[str]) -> list[Event]:
    config = load_config_string(f"input {{ stdin {{}} }} filter {{ {filter_section} }} output {{ null {{}} }}")
    chain = compile_filters(config.filters, Built([], [], []))
    return chain([Event("t", 0, {"message": m}) for m in messages])


def _messages(events: list[Event]) -> list[str]:
    return [ev.record["message"] for ev in events]


def test_single_if_keeps_order() -> None:
    out = _run_filters('if [message] == "3" { mutate { add_tag => ["x"] } }', [str(i) for i in range(1, 11)])
    assert _messages(out) == [str(i) for i in range(1, 11)]
    assert [ev.record.get("tags") for ev in out][2] == ["x"]


def test_nested_if_else_if_else_keeps_order() -> None:
    section = """
      if [message] =~ /^a/ {
        if [message] == "a2" { mutate { add_tag => ["inner"] } } else { mutate { add_tag => ["a"] } }
      } else if [message] =~ /^b/ {
        mutate { add_tag => ["b"] }
      } else {
        mutate { add_tag => ["other"] }
      }
    """
    messages = ["a1", "b1", "c1", "a2", "b2", "a3", "c2"]
    out = _run_filters(section, messages)
    assert _messages(out) == messages
    assert [ev.record["tags"] for ev in out] == [["a"], ["b"], ["other"], ["inner"], ["b"], ["a"], ["other"]]


def test_drop_inside_a_branch_keeps_the_rest_in_order() -> None:
    out = _run_filters('if [message] in ["2", "5"] { drop {} } else if [message] == "3" { mutate {} }',
                       [str(i) for i in range(1, 8)])
    assert _messages(out) == ["1", "3", "4", "6", "7"]


def test_split_in_a_branch_puts_the_pieces_where_their_parent_stood() -> None:
    out = _run_filters('if [message] =~ /,/ { split { field => "message" terminator => "," } }',
                       ["1", "2,3", "4", "5,6,7", "8"])
    assert _messages(out) == [str(i) for i in range(1, 9)]


def test_clone_in_a_branch_follows_its_original() -> None:
    out = _run_filters('if [message] == "2" { clone { clones => ["copy"] } }', ["1", "2", "3"])
    assert _messages(out) == ["1", "2", "2", "3"]
    assert out[2].record.get("type") == "copy" or "copy" in out[2].record.get("tags", [])


def test_whole_batch_one_way_is_not_copied() -> None:
    """The fast path: a batch nobody's condition splits reaches the next step as the same list."""
    config = load_config_string('filter { if [message] == "never" { drop {} } } output { null {} }')
    chain = compile_filters(config.filters, Built([], [], []))
    batch = [Event("t", 0, {"message": str(i)}) for i in range(5)]
    assert chain(batch) is batch


async def test_pipeline_delivers_in_input_order_through_conditionals(state_dir: str) -> None:
    out = CollectOutput()
    pipeline = Pipeline.from_string(
        'filter { if [n] == 3 { mutate { add_tag => ["x"] } } else if [n] == 7 { drop {} } }',
        outputs=[out], state_dir=state_dir)
    async with pipeline:
        ack = await pipeline.emit_events([Event("t", 0, {"n": i}) for i in range(1, 11)])
        await pipeline.delivered(ack)
    assert [ev.record["n"] for ev in out.events] == [1, 2, 3, 4, 5, 6, 8, 9, 10]
