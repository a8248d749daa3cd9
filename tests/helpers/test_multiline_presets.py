"""Stack-trace presets (Fluent Bit's java, python, go, ruby rules) on real-looking traces."""

from __future__ import annotations

from logpipe.helpers.multiline_presets import PresetJoiner, PresetSpec


def join(preset: str, lines: list[str]) -> list[str]:
    joiner = PresetJoiner(PresetSpec(preset))
    out, raws = joiner.feed(lines, [len(x) + 1 for x in lines])
    rest, more = joiner.flush()
    texts = [t for t, _ in out + rest]
    assert sum(raws + more) == sum(len(x) + 1 for x in lines)  # every byte accounted for once
    return texts


JAVA = [
    "Exception in thread \"main\" java.lang.IllegalStateException: boom",
    "\tat com.example.App.run(App.java:42)",
    "\tat com.example.App.main(App.java:10)",
    "Caused by: java.io.IOException: disk",
    "\tat com.example.Disk.read(Disk.java:7)",
    "\t... 2 more",
]


def test_java_trace_is_one_event_and_ordinary_lines_pass() -> None:
    texts = join("java", ["starting", *JAVA, "next request ok"])
    assert texts == ["starting", "\n".join(JAVA), "next request ok"]


def test_python_traceback() -> None:
    tb = [
        "Traceback (most recent call last):",
        '  File "app.py", line 3, in <module>',
        "    main()",
        '  File "app.py", line 2, in main',
        "    raise ValueError('bad')",
        "ValueError: bad",
    ]
    assert join("python", ["before", *tb, "after"]) == ["before", "\n".join(tb), "after"]


def test_go_panic() -> None:
    panic = [
        "panic: runtime error: index out of range [5] with length 3",
        "",
        "goroutine 1 [running]:",
        "main.main()",
        "\t/app/main.go:8 +0x1d",
        "exit status 2",
    ]
    texts = join("go", panic)
    assert texts[0] == "\n".join(panic[:5])
    assert texts[1:] == ["exit status 2"]


def test_ruby_backtrace() -> None:
    bt = [
        "app.rb:2:in `divide': divided by 0 (ZeroDivisionError)",
        "\tfrom app.rb:2:in `/'",
        "\tfrom app.rb:5:in `<main>'",
    ]
    assert join("ruby", [*bt, "done"]) == ["\n".join(bt), "done"]


def test_two_traces_back_to_back_stay_apart() -> None:
    assert join("java", JAVA[:3] + JAVA[:3]) == ["\n".join(JAVA[:3])] * 2


def test_max_lines_bounds_a_group() -> None:
    joiner = PresetJoiner(PresetSpec("java", max_lines=3))
    lines = [JAVA[0]] + ["\tat x.y(Z.java:1)"] * 5
    out, _ = joiner.feed(lines, [1] * len(lines))
    assert out[0][1] == ["multiline", "multiline_codec_max_lines_reached"]
