"""`logpipe check` on real Logstash configs (tests/config/corpus/logstash, sources in its README).

Each config either passes or fails for the reason written next to it: a plugin or setting
logpipe lacks, or a mistake Logstash refuses too. When a change makes a listed failure pass,
move it to PASSING: the test fails until the lists say what is true."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from logpipe.cli import main
from tests.paths import REPO

CORPUS = REPO / "tests" / "config" / "corpus" / "logstash"
#: What the configs' own deployments set (docker-elk's .env, the gdpr example's README).
ENVIRONMENT = {"LOGSTASH_INTERNAL_PASSWORD": "changeme", "FINGERPRINT_KEY": "key", "ELASTIC_PASSWORD": "changeme"}

PASSING = {
    "docker-elk__logstash.conf",
    "elastic-examples__kafka_logstash__gc.conf",
    "elastic-examples__apache_logs__apache_logstash.conf",
    "elastic-examples__apache_logs_security_analysis__secrepo_logstash.conf",
    "elastic-examples__earthquakes__ncedc-earthquakes-logstash.conf",
    "elastic-examples__nginx_json_logs__nginx_json_logstash.conf",
    "elastic-examples__nginx_logs__nginx_logstash.conf",
    "elastic-examples__usfec__usfec_logstash.conf",
}
#: config → a fragment of the first error it must report.
FAILING = {
    "elastic-examples__Business_Metrics_Recipes__twitter_trends__configs__logstash.conf":
        "'twitter' is a Logstash input plugin that logpipe does not provide",
    "elastic-examples__twitter__twitter_logstash.conf":
        "'twitter' is a Logstash input plugin that logpipe does not provide",
    "elastic-examples__nyc_traffic_accidents__nyc_collision_logstash.conf": "the ruby filter runs code",
    "elastic-examples__gdpr__pseudonymization__logstash_script_fingerprint.conf": "the ruby filter runs code",
    "elastic-examples__gdpr__pseudonymization__logstash_fingerprint.conf": "the ruby filter runs code",
    # Logstash refuses unquoted ${VAR} too (elastic/logstash#6081)
    "elastic-examples__logstash_batch_export.conf": "environment references must be quoted",
    # Index templates their repository does not hold next to them (or an absolute path of the
    # demo host): Logstash's `template` is a :path setting and refuses a missing file too.
    "elastic-examples__auditd_analysis__auditd_analysis_logstash.conf": "cannot read template './cef_template.json'",
    "elastic-examples__ssh_analysis__ssh_analysis_logstash.conf": "cannot read template './cef_template.json'",
    "elastic-examples__cef__logstash.conf": "cannot read template '/opt/demos/",
    "elastic-examples__nginx_json_plus_logs__nginxplus_json_logstash.conf":
        "cannot read template './nginxplus_json_template.json'",
    # Its patterns_dir and translate dictionaries are absolute paths of the deploying host
    # (/etc/pfelk/patterns, /etc/pfelk/databases), which Logstash needs as much; further on:
    # three ruby filters (refused by design).
    "pfelk__conf.d": "unknown pattern %{PFELK}",
}


def _entries() -> list[str]:
    return sorted(p.name for p in (CORPUS / "configs").iterdir())


def test_every_corpus_entry_has_an_expectation() -> None:
    assert set(_entries()) == PASSING | set(FAILING)


@pytest.mark.parametrize("name", _entries())
def test_check(name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for key, value in ENVIRONMENT.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(CORPUS / "cwd")
    code = main(["check", "-f", str(Path(os.pardir) / "configs" / name)])
    out = capsys.readouterr()
    if name in PASSING:
        assert code == 0, out.err
        assert "Configuration OK" in out.out
    else:
        assert code == 1
        first = next(line for line in out.err.splitlines() if "error:" in line)
        assert FAILING[name] in first, out.err
