"""The configuration file (config.md): TOML -> typed, validated, secrets resolved.

Every key has a default, so no file is needed. msgspec checks the shape and names
the offending key; this module adds what a schema cannot say (durations, secrets,
per-type requirements) and reports it the same way: `FILE: error: KEY: message`.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import msgspec

from .errors import ConfigError
from .findings import SEVERITIES
from .units import parse_duration

__all__ = [
    "DEFAULT_PATH",
    "SEVERITIES",
    "Config",
    "EngineConfig",
    "MetricsConfig",
    "RulesConfig",
    "SinkConfig",
    "load_config",
    "parse_config",
    "severity_rank",
]

DEFAULT_PATH = "/etc/tracehound/tracehound.toml"
WEBHOOK_FORMATS = ("json", "alertmanager", "slack", "pagerduty")


def severity_rank(severity: str) -> int:
    """Order of severities for `min_severity` and `--fail-on` (unknown ranks lowest)."""
    return SEVERITIES.index(severity) if severity in SEVERITIES else -1


# ---- the file's shape, as written (strings for durations and secrets) ----


class _Engine(msgspec.Struct, forbid_unknown_fields=True):
    tick: str = "100ms"
    lateness: str = "50ms"
    state_dir: str = "/var/lib/tracehound"


class _Rules(msgspec.Struct, forbid_unknown_fields=True):
    paths: list[str] = []
    disable: list[str] = []


class _Metrics(msgspec.Struct, forbid_unknown_fields=True):
    listen: str = "127.0.0.1:9464"


class _Sink(msgspec.Struct, forbid_unknown_fields=True):
    name: str = ""
    type: Literal["webhook", "jsonl", "console"] = "webhook"
    url: str = ""
    path: str = ""  # jsonl: the file findings are appended to
    format: str = ""  # per type: webhook json, console text
    secret: str = ""
    routing_key: str = ""
    min_severity: Literal["info", "warning", "critical"] = "info"
    timeout: str = "5s"
    max_age: str = "24h"
    concurrency: int = 4


class _File(msgspec.Struct, forbid_unknown_fields=True):
    engine: _Engine = msgspec.field(default_factory=_Engine)
    rules: _Rules = msgspec.field(default_factory=_Rules)
    metrics: _Metrics = msgspec.field(default_factory=_Metrics)
    sink: list[_Sink] = []


# ---- what the rest of the engine reads ----


@dataclass(frozen=True, slots=True)
class EngineConfig:
    tick: int = 100_000_000  # ns
    lateness: int = 50_000_000  # ns
    state_dir: str = "/var/lib/tracehound"


@dataclass(frozen=True, slots=True)
class RulesConfig:
    paths: tuple[str, ...] = ()
    disable: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    listen: str = "127.0.0.1:9464"  # "" = off

    @property
    def address(self) -> tuple[str, int] | None:
        """(host, port) to listen on, or None when metrics are off."""
        if not self.listen:
            return None
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]") or "0.0.0.0", int(port)


@dataclass(frozen=True, slots=True)
class SinkConfig:
    name: str
    type: str  # webhook | jsonl | console
    url: str = ""
    path: str = ""
    format: str = "json"
    secret: str = ""  # resolved value
    routing_key: str = ""  # resolved value
    min_severity: str = "info"
    timeout: int = 5_000_000_000  # ns
    max_age: int = 86_400_000_000_000  # ns
    concurrency: int = 4

    def accepts(self, severity: str) -> bool:
        return severity_rank(severity) >= severity_rank(self.min_severity)


@dataclass(frozen=True, slots=True)
class Config:
    engine: EngineConfig = field(default_factory=EngineConfig)
    rules: RulesConfig = field(default_factory=RulesConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    sinks: tuple[SinkConfig, ...] = ()
    source: str | None = None  # the file it came from, None for defaults

    def sink(self, name: str) -> SinkConfig | None:
        return next((s for s in self.sinks if s.name == name), None)


# ---- loading ----

_MAX_NS = 2**63 - 1  # times and durations are int64 ns everywhere downstream
_MIN_TICK = 1_000_000  # ns
_DURATION_KEYS = frozenset({"tick", "lateness", "timeout", "max_age"})
_AT = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
_UNKNOWN = re.compile(r"Object contains unknown field `(?P<key>[^`]*)`")


def _postable(url: str) -> bool:
    """An http(s) URL the webhook client can send to: ASCII, a host, a valid port."""
    try:
        u = urlsplit(url)
        u.port  # noqa: B018 - raises ValueError for a port that is not 0-65535
    except ValueError:
        return False
    return url.isascii() and u.scheme in ("http", "https") and bool(u.hostname)


def _reason(e: OSError | UnicodeDecodeError) -> str:
    """Why a file could not be read, without errno's `[Errno 2] ... 'path'` noise."""
    return (e.strerror if isinstance(e, OSError) else None) or str(e)


def _key_of(err: msgspec.ValidationError) -> tuple[str, str]:
    """msgspec's `... - at `$.sink[0].timeout`` as ("sink[0].timeout", message)."""
    m = _AT.match(str(err))
    assert m is not None  # the pattern matches any text
    msg, path = m.group("msg"), (m.group("path") or "").lstrip(".")
    u = _UNKNOWN.match(msg)
    if u is not None:
        key = f"{path}.{u.group('key')}" if path else u.group("key")
        return key, "unknown key"
    return path or "(top level)", msg[:1].lower() + msg[1:]


class _Reader:
    """Turns the raw file into Config, raising ConfigError that names file and key."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.base = Path(source).parent if source != "<defaults>" else Path.cwd()

    def error(self, key: str, msg: str) -> ConfigError:
        return ConfigError(f"{self.source}: error: {key}: {msg}")

    def duration(self, key: str, text: str) -> int:
        try:
            ns = parse_duration(text)
        except (ValueError, OverflowError):  # OverflowError: "1e400s" is infinite
            raise self.error(
                key, f"expected a duration such as 5s or 100ms, got {text!r}"
            ) from None
        if ns <= 0:
            raise self.error(key, f"must be more than 0, got {text!r}")
        if ns > _MAX_NS:
            raise self.error(key, f"must be less than 292 years (64-bit ns), got {text!r}")
        return ns

    def path(self, value: str) -> str:
        """A path as written, relative ones taken from the configuration's folder
        (so a config works the same from any working directory)."""
        p = Path(value).expanduser()
        return str(p if p.is_absolute() else self.base / p)

    def tick(self, text: str) -> int:
        ns = self.duration("engine.tick", text)
        if ns < _MIN_TICK:
            # every rule steps every tick: below 1ms the steps cost more than the events
            raise self.error("engine.tick", f"must be at least 1ms, got {text!r}")
        return ns

    def secret(self, key: str, value: str) -> str:
        """`env:NAME` or `file:/path` -> the value they name; anything else as written."""
        if value.startswith("env:"):
            name = value[4:]
            got = os.environ.get(name)
            if got is None:
                raise self.error(key, f"environment variable {name} is not set")
            return got
        if value.startswith("file:"):
            p = Path(self.path(value[5:]))
            try:
                return p.read_text().strip()
            except (OSError, UnicodeDecodeError) as e:
                raise self.error(key, f"cannot read {p}: {_reason(e)}") from None
        return value

    def sink(self, i: int, s: _Sink) -> SinkConfig:
        k = f"sink[{i}]"
        fmt = s.format or {"webhook": "json", "console": "text", "jsonl": "json"}[s.type]
        allowed = {
            "webhook": WEBHOOK_FORMATS,
            "console": ("text", "json"),
            "jsonl": ("json",),
        }[s.type]
        if fmt not in allowed:
            raise self.error(f"{k}.format", f"expected one of {', '.join(allowed)}, got {fmt!r}")
        if s.secret and not s.secret.startswith(("env:", "file:")):
            raise self.error(
                f"{k}.secret", "write secrets as env:NAME or file:/path, not in the file itself"
            )
        if s.type == "webhook" and not s.url:
            raise self.error(f"{k}.url", "a webhook sink needs a url")
        if s.type == "jsonl" and not s.path:
            raise self.error(f"{k}.path", "a jsonl sink needs a path")
        if s.concurrency < 1:
            raise self.error(f"{k}.concurrency", f"must be at least 1, got {s.concurrency}")
        url = self.secret(f"{k}.url", s.url)
        if s.type == "webhook" and not _postable(url):
            raise self.error(f"{k}.url", f"expected an http:// or https:// URL, got {url!r}")
        routing_key = self.secret(f"{k}.routing_key", s.routing_key)
        if s.type == "webhook" and fmt == "pagerduty" and not routing_key:
            raise self.error(f"{k}.routing_key", "the pagerduty format needs a routing_key")
        return SinkConfig(
            name=s.name or f"{s.type}{i}",
            type=s.type,
            url=url,
            path=self.path(s.path) if s.path else s.path,
            format=fmt,
            secret=self.secret(f"{k}.secret", s.secret),
            routing_key=routing_key,
            min_severity=s.min_severity,
            timeout=self.duration(f"{k}.timeout", s.timeout),
            max_age=self.duration(f"{k}.max_age", s.max_age),
            concurrency=s.concurrency,
        )

    def build(self, raw: Any) -> Config:
        try:
            f = msgspec.convert(raw, _File)
        except msgspec.ValidationError as e:
            key, msg = _key_of(e)
            if key.rsplit(".", 1)[-1] in _DURATION_KEYS and msg.startswith("expected `str`"):
                msg = 'expected a duration string such as "5s" or "100ms"'
            raise self.error(key, msg) from None
        sinks = tuple(self.sink(i, s) for i, s in enumerate(f.sink))
        seen: set[str] = set()
        for i, s in enumerate(sinks):
            if s.name in seen:
                raise self.error(f"sink[{i}].name", f"sink name {s.name!r} is used twice")
            seen.add(s.name)
        listen = f.metrics.listen
        if listen and not (
            re.fullmatch(r"(\[[0-9a-fA-F:]+\]|[^:\s]*):\d{1,5}", listen)
            and int(listen.rpartition(":")[2]) <= 65535
        ):
            raise self.error("metrics.listen", f'expected HOST:PORT or "", got {listen!r}')
        if not f.engine.state_dir:
            raise self.error("engine.state_dir", "must not be empty")
        return Config(
            engine=EngineConfig(
                tick=self.tick(f.engine.tick),
                lateness=self.duration("engine.lateness", f.engine.lateness),
                state_dir=self.path(f.engine.state_dir),
            ),
            rules=RulesConfig(tuple(map(self.path, f.rules.paths)), tuple(f.rules.disable)),
            metrics=MetricsConfig(listen),
            sinks=sinks,
            source=None if self.source == "<defaults>" else self.source,
        )


def parse_config(text: str, source: str = "<config>") -> Config:
    """A configuration from TOML text (`source` names it in errors)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{source}: error: {e}") from None
    return _Reader(source).build(raw)


def load_config(path: str | None) -> Config:
    """The file at `path`; without one, DEFAULT_PATH where it exists, else defaults."""
    if path is None:
        if not Path(DEFAULT_PATH).is_file():
            return _Reader("<defaults>").build({})
        path = DEFAULT_PATH
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: error: cannot read the configuration: {_reason(e)}") from None
    return parse_config(text, path)
