"""Logstash's `syslog_pri` filter: facility and severity from a syslog PRI number.

The PRI field (legacy `syslog_pri`, ECS `[log][syslog][priority]`) gives the facility (PRI / 8)
and severity (PRI % 8) codes and, with `use_labels`, their names. A missing field counts as
13 (user-level notice), as in Logstash; an array uses its first element; a value that is not
a number tags `_syslogpriparsefailure`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from logpipe.event import Event
from logpipe.fields import MISSING, add_tag, compile_getter, compile_setter
from logpipe.helpers.ecs import ecs_enabled, ecs_setting
from logpipe.plugin import Filter, Setting

FACILITIES = ["kernel", "user-level", "mail", "system", "security/authorization", "syslogd", "line printer",
              "network news", "UUCP", "clock", "security/authorization", "FTP", "NTP", "log audit", "log alert",
              "clock", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"]
SEVERITIES = ["emergency", "alert", "critical", "error", "warning", "notice", "informational", "debug"]
FAILURE_TAG = "_syslogpriparsefailure"


class SyslogPriFilter(Filter):
    name = "syslog_pri"
    creates_events = False
    doc = "Splits a syslog PRI value into facility and severity codes and names."
    settings: ClassVar[list[Setting]] = [
        Setting("syslog_pri_field_name", "string",
                doc="the PRI field (legacy syslog_pri; ECS [log][syslog][priority])"),
        Setting("use_labels", "bool", default=True, doc="also write the facility and severity names"),
        Setting("facility_labels", "array", default=FACILITIES, doc="facility names by code"),
        Setting("severity_labels", "array", default=SEVERITIES, doc="severity names by code"),
        ecs_setting(),
    ]

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        ecs = ecs_enabled(self.params)
        source = self.params["syslog_pri_field_name"] or ("[log][syslog][priority]" if ecs else "syslog_pri")
        self._get = compile_getter(source)
        names = (("[log][syslog][facility][code]", "[log][syslog][severity][code]", "[log][syslog][facility][name]",
                  "[log][syslog][severity][name]") if ecs else
                 ("syslog_facility_code", "syslog_severity_code", "syslog_facility", "syslog_severity"))
        self._set_fc, self._set_sc, self._set_fn, self._set_sn = (compile_setter(n) for n in names)

    def filter(self, events: list[Event]) -> list[Event]:
        facilities, severities = self.params["facility_labels"], self.params["severity_labels"]
        for ev in events:
            value = self._get(ev)
            if isinstance(value, list):
                value = value[0] if value else MISSING
            if value is MISSING or value is None:
                pri = 13
            else:
                try:
                    pri = int(str(value).strip())
                except ValueError:
                    add_tag(ev, FAILURE_TAG)
                    continue
            facility, severity = pri >> 3, pri & 7
            self._set_fc(ev, facility)
            self._set_sc(ev, severity)
            if self.params["use_labels"]:
                if facility < len(facilities):
                    self._set_fn(ev, facilities[facility])
                if severity < len(severities):
                    self._set_sn(ev, severities[severity])
            self.matched(ev)
        return events
