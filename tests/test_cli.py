from __future__ import annotations

import pytest

from exporter.cli import parse_settings
from exporter.settings import DEFAULT_DURATION_BUCKETS, Settings


def test_defaults_match_the_contract() -> None:
    s = parse_settings([], environ={})
    assert (s.listen_host, s.listen_port) == ("0.0.0.0", 9847)
    assert (s.namespaces, s.exclude_namespaces, s.job_family_label) == ((), (), None)
    assert (s.missed_grace_seconds, s.max_missed_backfill, s.max_owners) == (60.0, 100, 20000)
    assert s.duration_buckets == DEFAULT_DURATION_BUCKETS
    assert (s.log_level, s.log_format) == ("info", "text")


def test_flags() -> None:
    s = parse_settings(
        [
            "--kubeconfig",
            "/k",
            "--context",
            "c",
            "--listen",
            "127.0.0.1:1234",
            "--namespaces",
            "a, b",
            "--exclude-namespaces",
            "kube-system",
            "--job-family-label",
            "app",
            "--missed-grace",
            "1m30s",
            "--max-missed-backfill",
            "5",
            "--max-owners",
            "10",
            "--duration-buckets",
            "1,10,100",
            "--log-level",
            "debug",
            "--log-format",
            "json",
        ],
        environ={},
    )
    assert s == Settings(
        kubeconfig="/k",
        context="c",
        listen_host="127.0.0.1",
        listen_port=1234,
        namespaces=("a", "b"),
        exclude_namespaces=("kube-system",),
        job_family_label="app",
        missed_grace_seconds=90.0,
        max_missed_backfill=5,
        max_owners=10,
        duration_buckets=(1.0, 10.0, 100.0),
        log_level="debug",
        log_format="json",
    )


def test_env_is_read_and_flags_win() -> None:
    env = {"KBE_MISSED_GRACE": "2m", "KBE_NAMESPACES": "x,y", "KBE_LISTEN": "[::1]:9000"}
    s = parse_settings([], environ=env)
    assert (s.missed_grace_seconds, s.namespaces, s.listen_host, s.listen_port) == (
        120.0,
        ("x", "y"),
        "::1",
        9000,
    )
    assert parse_settings(["--missed-grace", "5s"], environ=env).missed_grace_seconds == 5.0


@pytest.mark.parametrize(
    "argv",
    [
        ["--listen", "nope"],
        ["--missed-grace", "10"],
        ["--max-owners", "0"],
        ["--duration-buckets", "5,1"],
        ["--log-format", "xml"],
    ],
)
def test_bad_input_exits_with_usage_error(
    argv: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exc:
        parse_settings(argv, environ={})
    assert exc.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_bad_env_is_reported_like_a_bad_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_settings([], environ={"KBE_MAX_OWNERS": "many"})
    assert "--max-owners" in capsys.readouterr().err
