"""The command line is generated from Settings: every field a flag, a variable and a help line."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys

import pytest

from exporter.app.settings import DEFAULT_DURATION_BUCKETS, Address, Settings, described
from exporter.cli import parse_settings

# A value for every setting that differs from its default, written as a user would.
EXAMPLES = {
    "kubeconfig": ("/k", "/k"),
    "context": ("c", "c"),
    "listen": ("127.0.0.1:1234", Address("127.0.0.1", 1234)),
    "web_config_file": ("/web.yml", "/web.yml"),
    "namespaces": ("a, b", ("a", "b")),
    "exclude_namespaces": ("kube-system", ("kube-system",)),
    "shard": ("2", 2),
    "total_shards": ("3", 3),
    "pod_namespace": ("monitoring", "monitoring"),
    "job_family_label": ("app", "app"),
    "missed_grace": ("1m30s", 90.0),
    "max_missed_backfill": ("5", 5),
    "max_owners": ("10", 10),
    "runs_kept": ("5", 5),
    "duration_buckets": ("1,10,100", (1.0, 10.0, 100.0)),
    "forget_owners_after": ("2h", 7200.0),
    "new_series_delay": ("2m", 120.0),
    "state_file": ("/var/lib/kbe/state", "/var/lib/kbe/state"),
    "state_configmap": ("monitoring/kbe-state", "monitoring/kbe-state"),
    "state_interval": ("10s", 10.0),
    "leader_elect": ("true", True),
    "leader_elect_resource_name": ("kbe-leader", "kbe-leader"),
    "leader_elect_resource_namespace": ("monitoring", "monitoring"),
    "leader_elect_lease_duration": ("30s", 30.0),
    "leader_elect_renew_deadline": ("5s", 5.0),
    "leader_elect_retry_period": ("1s", 1.0),
    "pod": ("kbe-0", "kbe-0"),
    "log_level": ("debug", "debug"),
    "log_format": ("json", "json"),
    "list_page_size": ("50", 50),
    "list_timeout": ("30s", 30.0),
    "watch_timeout": ("1m", 60.0),
    "watch_inactivity_timeout": ("2m", 120.0),
    "backoff_base": ("1s", 1.0),
    "backoff_cap": ("1m", 60.0),
    "pod_label_selector": ("app=batch", "app=batch"),
}


NEEDS = {
    "leader_elect": ["--state-configmap", "ns/state"],
    "shard": ["--total-shards", "3"],
    "pod_namespace": ["--pod", "kbe-1"],
}
"""What a setting's example cannot be used without."""


def test_every_setting_has_an_example_here() -> None:
    assert list(EXAMPLES) == [f.name for f in dataclasses.fields(Settings)]


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_every_setting_is_reachable_from_its_flag_and_its_variable(name: str) -> None:
    text, value = EXAMPLES[name]
    flag, env = "--" + name.replace("_", "-"), "KBE_" + name.upper()
    needs = NEEDS.get(name, [])
    assert getattr(Settings(), name) != value  # the example proves something
    assert getattr(parse_settings([flag, text, *needs], environ={}), name) == value
    assert getattr(parse_settings(needs, environ={env: text}), name) == value


def test_a_switch_given_alone_is_on() -> None:
    s = parse_settings(["--leader-elect", "--state-configmap", "ns/state"], environ={})
    assert s.leader_elect
    assert s.lease() == ("ns", "kube-batch-exporter")  # next to the checkpoint by default
    assert not parse_settings(["--leader-elect=false"], environ={}).leader_elect


def test_defaults_match_the_contract() -> None:
    s = parse_settings([], environ={})
    assert s == Settings()
    assert s.listen == ("0.0.0.0", 9847)
    assert (s.namespaces, s.exclude_namespaces, s.job_family_label) == ((), (), None)
    assert (s.missed_grace, s.max_missed_backfill, s.max_owners) == (60.0, 100, 20000)
    assert s.duration_buckets == DEFAULT_DURATION_BUCKETS
    assert (s.log_level, s.log_format) == ("info", "text")


def test_a_flag_wins_over_the_environment() -> None:
    env = {"KBE_MISSED_GRACE": "2m", "KBE_LISTEN": "[::1]:9000"}
    s = parse_settings(["--missed-grace", "5s"], environ=env)
    assert (s.missed_grace, s.listen) == (5.0, ("::1", 9000))


def test_help_lists_exactly_the_settings_with_their_defaults() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "exporter", "--help"], capture_output=True, text=True, check=True
    ).stdout
    flags = re.findall(r"^\s+(--[a-z-]+)", out, re.MULTILINE)  # the first flag of each entry
    assert flags == ["--version", *(s.flag for s in described())]  # after "-h, --help"
    assert "(default: 24h)" in out  # --forget-owners-after, as a user writes it
    assert "Grace before a CronJob slot without a Job counts as missed (default: 1m)." in (
        " ".join(out.split())
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--listen", "nope"], "expected HOST:PORT"),
        (["--missed-grace", "10"], "not a Go duration"),
        (["--max-owners", "0"], "expected a positive integer"),
        (["--duration-buckets", "5,1"], "strictly increasing"),
        (["--log-format", "xml"], "expected one of text, json"),
        (["--state-configmap", "no-slash"], "expected NAMESPACE/NAME"),
        (["--leader-elect", "maybe"], "expected true or false"),
        (["--leader-elect-resource-name", "Not_A_Name"], "expected a DNS name"),
    ],
)
def test_bad_input_exits_with_usage_error(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    err = usage_error(argv, capsys)
    assert f"argument {argv[0]}: " in err and message in err


def usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """What parse_settings says on stderr when it exits with the usage-error code 2."""
    with pytest.raises(SystemExit) as exc:
        parse_settings(argv, environ={})
    assert exc.value.code == 2
    return capsys.readouterr().err


def test_bad_env_is_reported_with_its_flag_and_variable(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        parse_settings([], environ={"KBE_MAX_OWNERS": "many"})
    assert exc.value.code == 2
    assert "argument --max-owners (from KBE_MAX_OWNERS): expected a positive integer" in (
        capsys.readouterr().err
    )


def test_excluding_every_chosen_namespace_is_refused_at_start_up(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exc:
        parse_settings(["--namespaces", "a,b", "--exclude-namespaces", "b,a"], environ={})
    assert exc.value.code == 2  # not a /readyz that stays 503 forever
    assert "there would be nothing to watch" in capsys.readouterr().err
    assert parse_settings(
        ["--namespaces", "a,b", "--exclude-namespaces", "b"], environ={}
    ).scopes() == ["a"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--state-file", "/s", "--state-configmap", "ns/s"], "exclude each other"),
        (["--state-interval", "0s"], "longer than 0s"),
        (["--leader-elect"], "--leader-elect needs --state-configmap"),
        (["--leader-elect", "--state-file", "/s"], "--leader-elect needs --state-configmap"),
        (["--leader-elect-renew-deadline", "15s"], "must be longer than"),
        (["--leader-elect-retry-period", "9s"], "1.2 times"),
    ],
)
def test_state_and_election_settings_that_cannot_work_are_refused_at_start_up(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert message in usage_error(argv, capsys)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--shard", "3", "--total-shards", "3"], "--shard 3 is not below --total-shards 3"),
        (["--shard", "1"], "--shard 1 is not below --total-shards 1"),
        (["--pod-namespace", "monitoring"], "got --pod None"),
        (["--pod-namespace", "monitoring", "--pod", "kbe"], "got --pod kbe"),
        (["--pod-namespace", "m", "--pod", "kbe-1", "--shard", "1"], "drop --shard"),
    ],
)
def test_a_shard_that_cannot_be_worked_out_stops_start_up(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert message in usage_error(argv, capsys)


def test_each_shard_elects_and_checkpoints_on_its_own() -> None:
    common = ["--state-configmap", "ns/kbe-state", "--total-shards", "3"]
    manual = parse_settings([*common, "--shard", "2"], environ={})
    auto = parse_settings(["--pod", "kbe-1", "--pod-namespace", "ns", *common[:2]], environ={})
    assert (manual.shard_index(), auto.shard_index()) == (2, 1) and auto.sharded
    assert manual.lease() == ("ns", "kube-batch-exporter-shard-2")
    assert auto.state_object() == ("ns", "kbe-state-shard-1")
    alone = parse_settings(["--pod", "kbe-1", *common[:2]], environ={})  # --pod: a Lease name
    assert not alone.sharded and alone.state_object() == ("ns", "kbe-state")
