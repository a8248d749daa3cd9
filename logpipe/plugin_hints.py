"""Messages for a plugin name logpipe has no plugin for: a plugin of another kind written in
the wrong block (`<source> @type mongo`), or a well-known Fluentd/Logstash plugin logpipe does
not provide (`bigquery_insert`), or a typo. The lists name plugins users meet in real configs."""

from __future__ import annotations

from logpipe.suggest import close_name, name_list

FLUENTD_WELL_KNOWN: dict[str, frozenset[str]] = {
    "input": frozenset({
        "http", "tcp", "udp", "exec", "unix", "windows_eventlog", "windows_eventlog2", "systemd", "kafka",
        "kafka_group", "s3", "sqs", "cloudwatch_logs", "prometheus", "prometheus_monitor",
        "prometheus_output_monitor", "prometheus_tail_monitor", "debug_agent", "kubernetes_events", "http_pull",
        "mqtt", "secure_forward", "gcloud_pubsub", "object_space", "gc_stat", "tail_ex", "docker_metrics",
    }),
    "filter": frozenset({
        "kubernetes_metadata", "geoip", "record_modifier", "concat", "prometheus", "stdout", "detect_exceptions",
        "dedot", "elasticsearch_genid", "throttle", "grepcounter", "typecast", "systemd_entry",
        "add_insert_ids", "ec2_metadata", "anonymizer", "flowcounter", "multiline_grok",
    }),
    "output": frozenset({
        "s3", "kafka", "kafka2", "kafka_buffered", "rdkafka", "rdkafka2", "kinesis_streams", "kinesis_firehose",
        "kinesis_streams_aggregated", "cloudwatch_logs", "bigquery", "bigquery_insert", "bigquery_load",
        "splunk_hec", "splunk", "datadog", "loki", "google_cloud", "gelf", "influxdb", "webhdfs", "http", "exec",
        "exec_filter", "roundrobin", "secure_forward", "flowcounter", "prometheus", "sumologic",
        "azure-loganalytics", "newrelic", "elasticsearch_dynamic",
        "rewrite_tag_filter", "relabel", "secondary_file", "redis", "mongo_replset", "cloudwatch", "gcs",
        "azure_storage_append_blob", "kafka_rest", "slack", "mail", "sql", "mysql", "postgres", "zabbix",
        "grepcounter", "record_reformer", "rewrite", "forest", "copy_ex", "detect_exceptions", "papertrail",
        "logzio_buffered", "honeycomb", "kinesis", "s3_ex",
    }),
}
LOGSTASH_WELL_KNOWN: dict[str, frozenset[str]] = {
    "input": frozenset({
        "kafka", "redis", "rabbitmq", "http", "tcp", "udp", "jdbc", "s3", "sqs", "http_poller", "exec", "pipe",
        "heartbeat", "elasticsearch", "cloudwatch", "kinesis", "azure_event_hubs", "snmp", "snmptrap", "imap",
        "twitter", "wmi", "gelf", "lumberjack", "relp", "unix", "websocket", "dead_letter_queue", "pipeline",
        "gcs", "google_pubsub", "jms", "log4j", "sqlite", "stomp", "varnishlog", "xmpp", "irc", "graphite",
    }),
    "filter": frozenset({
        "aggregate", "alter", "cidr", "de_dot", "dns", "elapsed", "elasticsearch", "environment",
        "extractnumbers", "http", "jdbc_static", "jdbc_streaming", "memcached", "metricize", "metrics", "sleep",
        "xml", "multiline", "anonymize", "checksum", "i18n", "range", "tld", "collate", "age", "bytes",
    }),
    "output": frozenset({
        "s3", "kafka", "redis", "rabbitmq", "http", "tcp", "udp", "syslog", "email", "exec", "pipe", "graphite",
        "statsd", "influxdb", "cloudwatch", "google_bigquery", "jdbc", "sqs", "sns", "nagios",
        "pagerduty", "websocket", "csv", "gelf", "lumberjack", "zabbix", "datadog", "loggly", "riemann",
        "google_cloud_storage", "google_pubsub", "kinesis", "mongodb", "webhdfs", "boundary", "circonus",
        "ganglia", "juggernaut", "metriccatcher", "nagios_nsca", "opentsdb", "solr_http", "stomp", "xmpp",
        "irc", "pipeline", "dynatrace", "sink",
    }),
}
_FLUENTD_BLOCK = {"input": "<source>", "filter": "<filter PATTERN>", "output": "<match PATTERN>"}
_ARTICLE = {"input": "an input", "filter": "a filter", "output": "an output", "codec": "a codec"}


def _block(kind: str, language: str, arg: str) -> str:
    if language == "logstash":
        return f"the {kind} {{ }} section"
    if kind == "input":
        return "<source>"
    return f"<{'match' if kind == 'output' else 'filter'} {arg or '**'}>"


def unknown_plugin_message(kind: str, name: str, language: str, directive_arg: str,
                           known: dict[str, list[str]]) -> str:
    """Why `name` is not a `kind` plugin here, and what to write instead. `known` maps each
    kind to the names logpipe has."""
    others = [k for k, names in known.items() if k != kind and name in names]
    if others:
        other = others[0]
        where = _block(kind, language, "")
        right = _block(other, language, directive_arg)
        return (f"'{name}' is {_ARTICLE[other]} plugin, not {_ARTICLE[kind]}: it belongs in {right}, "
                f"not in {where}")
    lists = [("Fluentd", FLUENTD_WELL_KNOWN), ("Logstash", LOGSTASH_WELL_KNOWN)]
    if language == "logstash":
        lists.reverse()
    for family, table in lists:
        if name in table.get(kind, frozenset()):
            return (f"'{name}' is a {family} {kind} plugin that logpipe does not provide; logpipe's {kind}s:\n"
                    f"{name_list(known.get(kind, []))}")
        for other, names in table.items():
            if other != kind and name in names:
                return (f"'{name}' is a {family} {other} plugin (which logpipe does not provide), not "
                        f"{_ARTICLE[kind]}; {other}s belong in {_block(other, language, directive_arg)}")
    close = close_name(name, known.get(kind, []))
    hint = f"did you mean '{close}'? " if close else ""
    return f"unknown {kind} plugin '{name}'; {hint}known {kind}s:\n{name_list(known.get(kind, []))}"
