"""Object keys of the s3 output: Fluentd's s3_object_key_format placeholders (out_s3's
documented default and examples), Logstash's sprintf in the prefix, and a content index."""

from __future__ import annotations

from logpipe.event import Event
from logpipe_plugins.outputs.s3.keys import INDEX, compile_key, with_index

T0 = 1_700_000_000_123_000_000  # 2023-11-14T22:13:20Z


def key(fmt: str, ev: Event, path: str = "logs/", slice_format: str = "%Y%m%d%H", ext: str = "gz") -> str:
    return compile_key(fmt, path=path, time_slice_format=slice_format, file_extension=ext)(ev)


def test_fluentd_default_format() -> None:
    rendered = key("%{path}%{time_slice}_%{index}.%{file_extension}", Event("t", T0, {}))
    assert rendered == f"logs/2023111422_{INDEX}.gz"
    assert with_index(rendered, "0123456789abcdef" * 4) == "logs/2023111422_0123456789abcdef0123456789abcdef.gz"


def test_tag_parts_strftime_and_sprintf_in_the_path() -> None:
    ev = Event("app.web.access", T0, {"service": "shop", "level": "info"})
    rendered = key("%{path}%{time_slice}/%{index}.log", ev, path="${tag[1]}/%{[service]}/%Y/%m/%{+dd}/",
                   slice_format="%H%M")
    assert rendered == f"web/shop/2023/11/14/2213/{INDEX}.log"
    assert key("%{path}${tag}_%{index}", ev, path="") == f"app.web.access_{INDEX}"
    assert key("%{path}${tag[9]}x%{index}", ev, path="") == f"x{INDEX}"


def test_a_field_value_is_never_read_as_a_placeholder() -> None:
    ev = Event("t", T0, {"service": "%Y-${tag}"})
    assert key("%{path}%{index}", ev, path="%{[service]}/%H/") == f"%Y-${{tag}}/22/{INDEX}"


def test_every_index_token_is_the_content_index() -> None:
    ev = Event("t", T0, {})
    assert key("%{index}-%{hex_random}-%{uuid_flush}", ev) == f"{INDEX}-{INDEX}-{INDEX}"
