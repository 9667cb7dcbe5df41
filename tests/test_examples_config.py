"""The example configurations load, with their secrets supplied the documented way."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config import load_config
from engine.errors import ConfigError

CONFIG = Path(__file__).resolve().parent.parent / "examples" / "config"


def test_watchdog_example_loads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TRACEHOUND_WEBHOOK_SECRET", "s3cret")
    text = (CONFIG / "tracehound.toml").read_text()
    key = tmp_path / "pd.key"
    key.write_text("R0UT1NG\n")
    conf = tmp_path / "tracehound.toml"
    conf.write_text(text.replace("/etc/tracehound/pd.key", str(key)))
    cfg = load_config(str(conf))
    names = [s.name for s in cfg.sinks]
    assert names == ["log", "ops", "pager"]
    assert cfg.sinks[2].routing_key == "R0UT1NG"
    assert cfg.sinks[1].secret == "s3cret"


def test_webhooks_example_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACEHOUND_WEBHOOK_SECRET", "s")
    monkeypatch.setenv("TRACEHOUND_SLACK_URL", "https://hooks.slack.example/T/B/X")
    monkeypatch.setenv("TRACEHOUND_PD_ROUTING_KEY", "k")
    cfg = load_config(str(CONFIG / "webhooks.toml"))
    assert [s.format for s in cfg.sinks] == ["alertmanager", "slack", "pagerduty", "json"]


def test_missing_secret_names_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRACEHOUND_SLACK_URL", raising=False)
    monkeypatch.setenv("TRACEHOUND_WEBHOOK_SECRET", "s")
    monkeypatch.setenv("TRACEHOUND_PD_ROUTING_KEY", "k")
    with pytest.raises(ConfigError, match=r"sink\[1\]\.url"):
        load_config(str(CONFIG / "webhooks.toml"))
