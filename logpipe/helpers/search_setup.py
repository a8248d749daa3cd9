"""Where Elasticsearch/OpenSearch outputs send events, and what they set up on the server first:
index templates, ILM (policy, template settings, the rollover write alias) and data streams.

Logstash's logstash-output-elasticsearch is the reference (settings and defaults from its
documentation); fluent-plugin-elasticsearch's names are spellings of the same settings
(`template_file`, `ilm_policy_id`, `data_stream_name`, `enable_ilm`).

- **Target**: a data stream (`data_stream => true`: `<type>-<dataset>-<namespace>`, with
  `data_stream_auto_routing` taking the event's own `[data_stream][type|dataset|namespace]`
  and `data_stream_sync_fields` writing the names used back into the document; action
  `create`, the only one data streams take), else the ILM rollover alias, else `index`.
  `auto` for `data_stream` and `ilm_enabled` means off here: Logstash 8 switches a config
  without `index` to data streams or ILM on its own, which would move the indices of every
  config brought over from Fluentd or older Logstash; say `true` to have them.
- **Setup**, once per connection before the first bulk request, in Logstash's order: the ILM
  policy (the default `logstash-policy` is created when missing; another must exist), the
  index template (`manage_template`: the user's `template` file or the built-in one, through
  the composable or the legacy API, not overwriting an existing one unless
  `template_overwrite`), then the write alias (`PUT /<alias-{now/d}-000001>` with
  `is_write_index`, unless the alias exists). A refusal is logged as an error and the output
  goes on (as Logstash does); failing to reach the server retries the write.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any, ClassVar
from urllib.parse import quote

import orjson

from logpipe.base import Helper, Plugin
from logpipe.errors import ConfigError, RetryableError
from logpipe.event import Event
from logpipe.fields import compile_getter
from logpipe.helpers.ecs import ecs_enabled, ecs_setting
from logpipe.helpers.search_bulk import Transport, describe_error, error_of
from logpipe.helpers.target_name import compile_target
from logpipe.settings import Setting

DEFAULT_INDEX = "logstash-%{+YYYY.MM.dd}"
DEFAULT_POLICY = "logstash-policy"
#: Logstash's default policy: roll over at 50 GB or 30 days.
DEFAULT_POLICY_BODY: dict[str, Any] = {"policy": {"phases": {"hot": {"actions": {
    "rollover": {"max_size": "50gb", "max_age": "30d"}}}}}}
DATA_STREAM_TYPES = ("logs", "metrics", "synthetics", "traces")
_TRI = ("true", "false", "auto")
#: What ES refuses in a data stream's dataset/namespace; Logstash replaces it with `_`.
_DS_BAD = re.compile(r'[\\/*?"<>| ,#:-]')


class IndexSetup(Helper):
    settings: ClassVar[list[Setting]] = [
        ecs_setting("ECS field layout; also picks the default template and alias names (ecs-logstash)"),
        Setting("manage_template", "bool", default=True,
                doc="install an index template at start (the built-in one, for logstash-* indices, or `template`)"),
        Setting("template", "path", spellings=("template_file",), doc="JSON file of the index template to install"),
        Setting("template_name", "string", doc="name of the installed template (default logstash, or ecs-logstash)"),
        Setting("template_overwrite", "bool", default=False, doc="replace a template of that name that exists"),
        Setting("template_api", "string", default="auto", choices=("auto", "legacy", "composable"),
                doc="_index_template (composable; auto on 8.x and later, OpenSearch 2.x) or _template (legacy)"),
        Setting("ilm_enabled", "string", default="auto", choices=_TRI, spellings=("enable_ilm",),
                doc="write through an ILM rollover alias (auto: off unless ilm_rollover_alias is set)"),
        Setting("ilm_rollover_alias", "string", doc="the write alias (default logstash, or ecs-logstash); constant"),
        Setting("ilm_pattern", "string", default="{now/d}-000001",
                doc="suffix of the first index behind the alias (date math allowed)"),
        Setting("ilm_policy", "string", default=DEFAULT_POLICY, spellings=("ilm_policy_id",),
                doc="ILM policy of the indices (the default one is created when missing)"),
        Setting("data_stream", "string", default="auto", choices=_TRI,
                doc="write to a data stream <type>-<dataset>-<namespace> (auto: off unless data_stream_name)"),
        Setting("data_stream_type", "string", default="logs", choices=DATA_STREAM_TYPES, doc="data stream type"),
        Setting("data_stream_dataset", "string", default="generic", doc="data stream dataset"),
        Setting("data_stream_namespace", "string", default="default", doc="data stream namespace"),
        Setting("data_stream_auto_routing", "bool", default=True,
                doc="take type/dataset/namespace from the event's [data_stream] fields when it has them"),
        Setting("data_stream_sync_fields", "bool", default=True,
                doc="write the [data_stream] fields of the stream used into each document"),
        Setting("data_stream_name", "string",
                doc="Fluentd: the data stream to write to (${tag} placeholders allowed); implies data_stream"),
        Setting("document_type", "string",
                doc="accepted for old configs; mapping types are gone (ignored, with a warning, on 8.x)"),
    ]


def data_streams_on(p: dict[str, Any]) -> bool:
    return p["data_stream"] == "true" or bool(p["data_stream_name"])


def ilm_on(p: dict[str, Any]) -> bool:
    return not data_streams_on(p) and (
        p["ilm_enabled"] == "true" or (p["ilm_enabled"] == "auto" and p["ilm_rollover_alias"] is not None))


def rollover_alias(p: dict[str, Any]) -> str:
    return p["ilm_rollover_alias"] or ("ecs-logstash" if ecs_enabled(p) else "logstash")


def check_settings(plugin: Plugin, log: logging.Logger) -> None:
    """Combinations Logstash refuses at start, refused here with the setting to edit."""
    p = plugin.params
    if data_streams_on(p):
        for name in ("index", "index_name", "ilm_rollover_alias"):
            if p[name] is not None:
                raise ConfigError(f"{plugin.setting_name(name)} cannot be used with data streams "
                                  "(the stream is named by data_stream_type, _dataset and _namespace)",
                                  setting=plugin.setting_name(name))
        if p["action"] not in (None, "create"):
            raise ConfigError("data streams take only the create action", setting=plugin.setting_name("action"))
        for name in ("data_stream_dataset", "data_stream_namespace"):
            if len(p[name]) > 100 or not p[name]:
                raise ConfigError(f"{name} must be 1 to 100 characters", setting=name)
    if ilm_on(p):
        alias = rollover_alias(p)
        if "%{" in alias or "${" in alias:
            raise ConfigError("ilm_rollover_alias cannot hold field references (it is created once, at start)",
                              setting="ilm_rollover_alias")
        if p["index"] is not None:
            log.warning("%s: ILM is on: events go to the rollover alias %r, not to index %r",
                        plugin.id, alias, p["index"])
    if p["document_type"] is not None:
        log.warning("%s: document_type is ignored: Elasticsearch 8 and OpenSearch 2 have no mapping types",
                    plugin.id)


def default_action(p: dict[str, Any]) -> str:
    return p["action"] or ("create" if data_streams_on(p) else "index")


def index_function(plugin: Plugin, strftime: Callable[[str], Callable[[int], str]]) -> Callable[[Event], str]:
    """Where an event goes, data streams and ILM aside (see data_stream_target)."""
    p = plugin.params
    if ilm_on(p):
        alias = rollover_alias(p)
        return lambda ev: alias
    if p["logstash_format"]:
        prefix, _ = compile_target(p["logstash_prefix"] + p["logstash_prefix_separator"],
                                   plugin.setting_name("logstash_prefix"))
        date = strftime(p["logstash_dateformat"])
        return lambda ev: prefix(ev) + date(ev.time)
    if p["index_name"] is not None:
        return compile_target(p["index_name"], plugin.setting_name("index_name"))[0]
    return compile_target(p["index"] or DEFAULT_INDEX, "index")[0]


def sanitize_part(text: str, *, dataset: bool) -> str:
    """A dataset/namespace as ES accepts it: lowercase, forbidden characters as `_` (Logstash)."""
    clean = _DS_BAD.sub("_", text.lower()).lstrip("_.+")
    return (clean or ("generic" if dataset else "default"))[:100]


class DataStreamTarget:
    """The data stream of each event, and its document with `[data_stream]` in sync."""

    def __init__(self, plugin: Plugin) -> None:
        p = plugin.params
        self._name = compile_target(p["data_stream_name"], "data_stream_name")[0] if p["data_stream_name"] else None
        self._type, self._dataset, self._namespace = (p["data_stream_type"], p["data_stream_dataset"],
                                                      p["data_stream_namespace"])
        self._routing = p["data_stream_auto_routing"] and self._name is None
        self._sync = p["data_stream_sync_fields"] and self._name is None
        self._field = compile_getter("[data_stream]")

    def _parts(self, ev: Event) -> tuple[str, str, str]:
        kind, dataset, namespace = self._type, self._dataset, self._namespace
        if self._routing:
            given = self._field(ev)
            if isinstance(given, dict):
                kind = str(given.get("type") or kind)
                dataset = sanitize_part(str(given.get("dataset") or dataset), dataset=True)
                namespace = sanitize_part(str(given.get("namespace") or namespace), dataset=False)
        return kind, dataset, namespace

    def index(self, ev: Event) -> str:
        if self._name is not None:
            return self._name(ev)
        return "-".join(self._parts(ev))

    def source(self, ev: Event, record: dict[str, Any]) -> dict[str, Any]:
        if not self._sync:
            return record
        kind, dataset, namespace = self._parts(ev)
        synced = {"type": kind, "dataset": dataset, "namespace": namespace}
        current = record.get("data_stream")
        if current == synced:
            return record
        return {**record, "data_stream": {**current, **synced} if isinstance(current, dict) else synced}


# ---- setup at start ----------------------------------------------------------------------


def default_template(patterns: list[str], ecs: bool) -> dict[str, Any]:
    """The built-in template, composable form: strings as text with a keyword sub-field
    (what Logstash's default template does), `@timestamp` a date, `@version` a keyword."""
    strings = {"match_mapping_type": "string", "mapping": {"type": "text", "norms": False, "fields": {
        "keyword": {"type": "keyword", "ignore_above": 256}}}}
    properties: dict[str, Any] = {"@timestamp": {"type": "date"}, "@version": {"type": "keyword"}}
    if not ecs:
        properties["geoip"] = {"dynamic": True, "properties": {
            "ip": {"type": "ip"}, "location": {"type": "geo_point"}, "latitude": {"type": "half_float"},
            "longitude": {"type": "half_float"}}}
    return {"index_patterns": patterns, "priority": 200, "template": {
        "settings": {"index.refresh_interval": "5s", "number_of_shards": 1},
        "mappings": {"dynamic_templates": [{"message_field": {
            "path_match": "message", "match_mapping_type": "string",
            "mapping": {"type": "text", "norms": False}}}, {"string_fields": {"match": "*", **strings}}],
            "properties": properties}}}


def legacy_form(template: dict[str, Any]) -> dict[str, Any]:
    """A composable template as the legacy `_template` API takes it."""
    if "template" not in template or not isinstance(template["template"], dict):
        return template
    inner = template["template"]
    out = {k: v for k, v in template.items() if k not in ("template", "priority", "data_stream", "composed_of")}
    out["order"] = template.get("priority", 0)
    out.update({k: inner[k] for k in ("settings", "mappings", "aliases") if k in inner})
    return out


def with_ilm(template: dict[str, Any], composable: bool, policy: str, alias: str) -> dict[str, Any]:
    """The template with the indices' lifecycle settings (Logstash adds them to any template)."""
    body = orjson.loads(orjson.dumps(template))
    holder = body.setdefault("template", {}) if composable else body
    settings = holder.setdefault("settings", {})
    settings["index.lifecycle.name"] = policy
    settings["index.lifecycle.rollover_alias"] = alias
    return body


def read_template(plugin: Plugin) -> dict[str, Any] | None:
    path = plugin.params["template"]
    if path is None:
        return None
    setting = plugin.setting_name("template")
    try:
        with open(path, "rb") as fh:
            body = orjson.loads(fh.read())
    except OSError as exc:
        raise ConfigError(f"cannot read template {path!r}: {exc.strerror}", setting=setting) from exc
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"template {path!r} is not JSON: {exc}", setting=setting) from exc
    if not isinstance(body, dict):
        raise ConfigError(f"template {path!r} must hold a JSON object", setting=setting)
    return body


class Setup:
    """What runs once per connection before the first bulk request."""

    def __init__(self, plugin: Plugin, log: logging.Logger, *, product: str) -> None:
        p = plugin.params
        self._plugin_id = plugin.id
        self._log = log
        self._product = product
        self._ecs = ecs_enabled(p)
        self._ilm = ilm_on(p)
        self._alias = rollover_alias(p)
        self._pattern: str = p["ilm_pattern"]
        policy: str = p["ilm_policy"]
        self._policy_body: dict[str, Any] | None = None
        if policy.lstrip().startswith("{"):  # Fluentd's ilm_policy is the policy itself, named by ilm_policy_id
            try:
                self._policy_body = orjson.loads(policy)
            except orjson.JSONDecodeError as exc:
                raise ConfigError(f"ilm_policy is neither a name nor a JSON policy: {exc}",
                                  setting="ilm_policy") from exc
            policy = DEFAULT_POLICY
        self._policy = policy
        self._template = read_template(plugin)
        self._template_name: str = p["template_name"] or ("ecs-logstash" if self._ecs else "logstash")
        self._overwrite: bool = p["template_overwrite"]
        self._api: str = p["template_api"]
        index = p["index"] or DEFAULT_INDEX
        default_target = not data_streams_on(p) and not p["logstash_format"] and p["index_name"] is None \
            and index.startswith("logstash-")
        self._manage = p["manage_template"] and (self._template is not None or self._ilm or default_target)
        self.done = False

    async def run(self, transport: Transport, major: int) -> None:
        if self._ilm:
            await self._policy_exists(transport)
        if self._manage:
            await self._install_template(transport, major)
        if self._ilm:
            await self._bootstrap_alias(transport)
        self.done = True

    def _refused(self, what: str, status: int, body: Any) -> None:
        self._log.error("%s: %s refused by %s: %s", self._plugin_id, what, self._product,
                        describe_error(status, error_of(body)))

    async def _policy_exists(self, transport: Transport) -> None:
        path = f"/_ilm/policy/{quote(self._policy, safe='')}"
        found = await transport.request("GET", path)
        if found.status == 200:
            return
        if found.status != 404:
            self._refused(f"reading ILM policy {self._policy!r}", found.status, found.body)
            return
        if self._policy_body is None and self._policy != DEFAULT_POLICY:
            self._log.error("%s: ILM policy %r does not exist; create it (only %r is created by logpipe)",
                            self._plugin_id, self._policy, DEFAULT_POLICY)
            return
        made = await transport.request("PUT", path, self._policy_body or DEFAULT_POLICY_BODY)
        if made.status >= 300:
            self._refused(f"creating ILM policy {self._policy!r}", made.status, made.body)
        else:
            self._log.info("%s: created ILM policy %s", self._plugin_id, self._policy)

    async def _install_template(self, transport: Transport, major: int) -> None:
        composable = self._api == "composable" or (self._api == "auto" and major >= 8)
        base = "/_index_template/" if composable else "/_template/"
        path = base + quote(self._template_name, safe="")
        if not self._overwrite:
            exists = await transport.request("HEAD", path)
            if exists.status == 200:
                self._log.info("%s: template %s exists; kept (template_overwrite => false)", self._plugin_id,
                               self._template_name)
                return
        body = self._template
        if body is None:
            patterns = [f"{self._alias}-*"] if self._ilm else [("ecs-logstash-*" if self._ecs else "logstash-*")]
            body = default_template(patterns, self._ecs)
        if not composable:
            body = legacy_form(body)
        if self._ilm:
            body = with_ilm(body, composable, self._policy, self._alias)
        put = await transport.request("PUT", path, body)
        if put.status >= 300:
            self._refused(f"installing template {self._template_name!r}", put.status, put.body)
        else:
            self._log.info("%s: installed %s template %s", self._plugin_id,
                           "composable" if composable else "legacy", self._template_name)

    async def _bootstrap_alias(self, transport: Transport) -> None:
        alias = self._alias
        exists = await transport.request("HEAD", f"/_alias/{quote(alias, safe='')}")
        if exists.status == 200:
            return
        first = f"<{alias}-{self._pattern}>" if "{" in self._pattern else f"{alias}-{self._pattern}"
        made = await transport.request("PUT", "/" + quote(first, safe=""),
                                       {"aliases": {alias: {"is_write_index": True}}})
        if made.status < 300:
            self._log.info("%s: created write alias %s", self._plugin_id, alias)
            return
        if made.status == 400 and (error_of(made.body) or {}).get("type") == "resource_already_exists_exception":
            return  # another shipper made it meanwhile
        self._refused(f"creating the write alias {alias!r}", made.status, made.body)


def server_major(info: Any) -> tuple[str, int]:
    """(`version.number`, its major) from the `GET /` body."""
    version = str((info or {}).get("version", {}).get("number", "?")) if isinstance(info, dict) else "?"
    head = version.split(".")[0]
    if not head.isdigit():
        raise RetryableError(f"the server's version answer has no version number: {str(info)[:200]}")
    return version, int(head)
