"""Configuration: defaults, typed values, errors that name the key, secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

import engine.config as config_mod
from engine.config import load_config, parse_config
from engine.errors import ConfigError

FULL = """
[engine]
tick = "200ms"
lateness = "20ms"
state_dir = "/tmp/th"

[rules]
paths = ["/etc/tracehound/rules"]
disable = ["net_drop_storm"]

[metrics]
listen = "127.0.0.1:9999"

[[sink]]
name = "ops"
type = "webhook"
url = "https://hooks.example.org/tracehound"
format = "json"
secret = "env:TH_TEST_SECRET"
min_severity = "warning"
timeout = "5s"

[[sink]]
name = "pager"
type = "webhook"
url = "https://events.pagerduty.com/v2/enqueue"
format = "pagerduty"
routing_key = "file:pd.key"
min_severity = "critical"
max_age = "1h"
concurrency = 2
"""


def test_defaults_without_a_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(config_mod, "DEFAULT_PATH", str(tmp_path / "absent.toml"))
    c = load_config(None)
    assert c.engine.tick == 100_000_000 and c.engine.lateness == 50_000_000
    assert c.engine.state_dir == "/var/lib/tracehound"
    assert c.rules.paths == () and c.sinks == () and c.source is None
    assert c.metrics.address == ("127.0.0.1", 9464)


def test_default_file_is_read_where_it_exists(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    p = tmp_path / "tracehound.toml"
    p.write_text('[engine]\ntick = "1s"\n')
    monkeypatch.setattr(config_mod, "DEFAULT_PATH", str(p))
    assert load_config(None).engine.tick == 1_000_000_000


def test_full_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TH_TEST_SECRET", "s3cret")
    (tmp_path / "pd.key").write_text("R0UTING\n")
    p = tmp_path / "c.toml"
    p.write_text(FULL)
    c = load_config(str(p))
    assert c.engine.tick == 200_000_000 and c.engine.state_dir == "/tmp/th"
    assert c.rules.disable == ("net_drop_storm",)
    assert c.metrics.address == ("127.0.0.1", 9999)
    ops, pager = c.sinks
    assert ops.name == "ops" and ops.secret == "s3cret" and ops.timeout == 5_000_000_000
    assert ops.max_age == 24 * 3600 * 1_000_000_000 and ops.concurrency == 4
    assert ops.accepts("critical") and ops.accepts("warning") and not ops.accepts("info")
    assert pager.routing_key == "R0UTING" and pager.max_age == 3600 * 1_000_000_000
    assert pager.concurrency == 2 and pager.format == "pagerduty"
    assert c.sink("pager") is pager


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[engine]\ntik = "1s"\n', "engine.tik"),
        ("[bogus]\n", "bogus"),
        ("[engine]\ntick = 5\n", "engine.tick"),
        ('[engine]\ntick = "5 apples"\n', "engine.tick"),
        ('[engine]\nlateness = "5MB"\n', "engine.lateness"),
        (
            '[[sink]]\nurl = "http://x"\n[[sink]]\nurl = "http://y"\ntimeout = "soon"\n',
            "sink[1].timeout",
        ),
        ('[[sink]]\nurl = "http://x"\ncolour = "red"\n', "sink[0].colour"),
        ('[[sink]]\nurl = "http://x"\nformat = "xml"\n', "sink[0].format"),
        ('[[sink]]\nurl = "http://x"\ntype = "pigeon"\n', "sink[0].type"),
        ('[[sink]]\nurl = "http://x"\nmin_severity = "loud"\n', "sink[0].min_severity"),
        ('[[sink]]\nurl = "http://x"\nconcurrency = "4"\n', "sink[0].concurrency"),
        ('[[sink]]\nurl = "http://x"\nconcurrency = 0\n', "sink[0].concurrency"),
        ('[[sink]]\ntype = "webhook"\n', "sink[0].url"),
        ('[[sink]]\nurl = "http://x:99999/"\n', "sink[0].url"),
        ('[[sink]]\nurl = "http://x:abc/"\n', "sink[0].url"),
        ('[[sink]]\nurl = "http:///no-host"\n', "sink[0].url"),
        ('[[sink]]\nurl = "ftp://x/"\n', "sink[0].url"),
        ('[[sink]]\nurl = "http://x"\nformat = "pagerduty"\n', "sink[0].routing_key"),
        ('[[sink]]\nurl = "http://x"\nsecret = "plain"\n', "sink[0].secret"),
        ('[[sink]]\nurl = "http://x"\nsecret = "env:TH_SURELY_UNSET_VAR"\n', "sink[0].secret"),
        ('[[sink]]\nurl = "http://x"\nsecret = "file:/nonexistent/key"\n', "sink[0].secret"),
        (
            '[[sink]]\nname = "a"\nurl = "http://x"\n[[sink]]\nname = "a"\nurl = "http://y"\n',
            "sink[1].name",
        ),
        ('[[sink]]\ntype = "jsonl"\n', "sink[0].path"),
        ('[metrics]\nlisten = "nonsense"\n', "metrics.listen"),
        ('[metrics]\nlisten = "127.0.0.1:99999"\n', "metrics.listen"),
        ('[engine]\ntick = "1e400s"\n', "engine.tick"),
        ('[engine]\ntick = "500us"\n', "engine.tick"),
        ('[engine]\nlateness = "1e30s"\n', "engine.lateness"),
        ('[rules]\npaths = "/etc"\n', "rules.paths"),
        ("sink = 3\n", "sink"),
    ],
)
def test_errors_name_the_key(text: str, key: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_config(text, "t.toml")
    msg = str(e.value)
    assert msg.startswith(f"t.toml: error: {key}:"), msg


def test_toml_syntax_error_names_the_line() -> None:
    with pytest.raises(ConfigError) as e:
        parse_config("[engine\n", "bad.toml")
    assert "bad.toml" in str(e.value) and "line 1" in str(e.value)


def test_missing_file() -> None:
    with pytest.raises(ConfigError) as e:
        load_config("/nonexistent/tracehound.toml")
    assert "/nonexistent/tracehound.toml" in str(e.value)


def test_file_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "latin1.toml"
    bad.write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match="cannot read the configuration"):
        load_config(str(bad))
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[[sink]]\nurl = "http://x"\nsecret = "file:{bad}"\n')
    with pytest.raises(ConfigError, match=r"sink\[0\]\.secret: cannot read"):
        load_config(str(cfg))


def test_metrics_off_and_sink_defaults() -> None:
    c = parse_config('[metrics]\nlisten = ""\n[[sink]]\ntype = "console"\n')
    assert c.metrics.address is None
    assert c.sinks[0].name == "console0" and c.sinks[0].format == "text"


def test_relative_paths_are_taken_from_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    cfg = etc / "tracehound.toml"
    cfg.write_text(
        '[engine]\nstate_dir = "state"\n[rules]\npaths = ["rules", "/abs/rules"]\n'
        '[[sink]]\ntype = "jsonl"\npath = "out/findings.jsonl"\n'
    )
    monkeypatch.chdir(tmp_path)  # somewhere else than the config's folder
    c = load_config(str(cfg))
    assert c.engine.state_dir == str(etc / "state")
    assert c.rules.paths == (str(etc / "rules"), "/abs/rules")
    assert c.sinks[0].path == str(etc / "out" / "findings.jsonl")


def test_tick_of_one_ms_is_allowed() -> None:
    assert parse_config('[engine]\ntick = "1ms"\n').engine.tick == 1_000_000
