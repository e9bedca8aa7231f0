"""The whole config checked once, before any data is read, into a frozen `Settings`; a problem
is one message naming the setting. Also what every command derives from a config the same way:
the ledger's URL (`configured_ledger_url`) and the secrets to redact (`config_secrets`).
"""

from __future__ import annotations

import contextlib
import ipaddress
import math
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, cast

from target_pendo.config.schema import (
    DEFAULTS,
    MIN_REQUESTS_PER_SECOND,
    REGION_HOSTS,
    REGION_TRACK_HOSTS,
    SETTING,
    UnmappedStreams,
)
from target_pendo.config.streams import WILDCARD_STREAM, StreamSpec, parse_stream_spec, shown
from target_pendo.errors import ConfigError
from target_pendo.ledger import default_url, url_secret
from target_pendo.observe.alert import webhook_secrets
from target_pendo.observe.redact import shown_url, url_secrets


@dataclass(frozen=True)
class Settings:
    """Run-wide settings, resolved from the raw config. Defaults are the schema's."""

    api_url: str
    state_dir: str
    streams: Mapping[str, StreamSpec]
    default_stream: Mapping[str, Any] | None
    unmapped_streams: UnmappedStreams
    max_concurrency: int
    max_requests_per_second: float | None  # a ceiling for adaptive pacing; 0: no pacing
    request_timeout: float
    max_retry_seconds: float
    ledger_url: str | None = field(default=None, repr=False)  # as given: see below
    full_resync: bool = DEFAULTS["full_resync"]
    max_delete_fraction: float = DEFAULTS["max_delete_fraction"]
    max_rejected_fraction: float = DEFAULTS["max_rejected_fraction"]
    dry_run: bool = DEFAULTS["dry_run"]
    call_log: bool = DEFAULTS["call_log"]
    rejects_include_values: bool = DEFAULTS["rejects_include_values"]
    track_event_secret: str | None = field(default=None, repr=False)
    integration_key: str | None = field(default=None, repr=False)
    track_url: str = ""  # the Track host; parse_settings always sets it
    ledger_wait_seconds: float = DEFAULTS["ledger_wait_seconds"]
    retry_pending_days: float = DEFAULTS["retry_pending_days"]
    retention_days: float = DEFAULTS["retention_days"]
    region: str = DEFAULTS["region"]
    api_url_set: bool = False  # 'api_url' given: the region's hosts are not used
    alert_webhook_url: str | None = field(default=None, repr=False)  # a secret: see alert.py

    @property
    def resolved_ledger_url(self) -> str:
        """The ledger the run writes to: 'ledger_url', else the SQLite file in 'state_dir'."""
        return self.ledger_url or default_url(self.state_dir)

    @property
    def secrets(self) -> list[str | None]:
        """Every secret of the config (`config_secrets`), for the run's redactor."""
        keys = [self.track_event_secret, self.integration_key]
        urls = [self.api_url, self.track_url]
        return _secrets(keys, self.resolved_ledger_url, urls, self.alert_webhook_url)

    def spec_for(self, stream: str) -> StreamSpec | None:
        """The stream's own spec, else the `*` default applied to it, else None."""
        spec = self.streams.get(stream)
        if spec is None and self.default_stream is not None:
            spec = parse_stream_spec(stream, self.default_stream)
        return spec

    def configured_stream_names(self) -> list[str]:
        names = sorted(self.streams)
        if self.default_stream is not None:
            names.append(WILDCARD_STREAM)
        return names


# --- one setting, checked as schema.py declares it --------------------------------------------
def _number(config: Mapping[str, Any], key: str, default: float, rule: str) -> float:
    """A finite number; a Decimal (the SDK's reading of a file's decimals) and text pass."""
    value = config.get(key)
    if value is None:
        return default
    number = math.nan
    if isinstance(value, int | float | Decimal | str) and not isinstance(value, bool):
        with contextlib.suppress(TypeError, ValueError, OverflowError):
            number = float(value)
    if not math.isfinite(number):
        raise ConfigError(f"setting '{key}' must be {rule}, got {shown(value)}")
    return number


def number_setting(config: Mapping[str, Any], key: str, *, unset: float | None = None) -> float:
    """A number setting within its declared bounds; its default (or `unset`) when not given."""
    declared = SETTING[key]
    low, high = declared.limits()
    rule = f"a number from {low:g} to {high:g}"
    number = _number(config, key, declared.default if unset is None else unset, rule)
    if not low <= number <= high:
        raise ConfigError(f"setting '{key}' must be {rule}, got {shown(config.get(key))}")
    return number


def flag_setting(config: Mapping[str, Any], key: str) -> bool:
    value = config.get(key)
    if value is None:
        return bool(SETTING[key].default)
    if not isinstance(value, bool):
        raise ConfigError(f"setting '{key}' must be true or false, got {shown(value)}")
    return value


def choice_setting(config: Mapping[str, Any], key: str) -> str:
    """One of the setting's declared choices; its default when unset or empty."""
    value = config.get(key) or SETTING[key].default
    choices = SETTING[key].choices
    if value not in choices:
        allowed = (
            " or ".join(map(repr, choices)) if len(choices) == 2 else f"one of {list(choices)}"
        )
        raise ConfigError(f"setting '{key}' must be {allowed}, got {shown(value)}")
    return str(value)


def text_setting(config: Mapping[str, Any], key: str) -> str:
    """A text setting; its default when unset or empty."""
    return str(config.get(key) or SETTING[key].default)


# --- what every command derives from a config the same way ------------------------------------
def configured_ledger_url(config: Mapping[str, Any]) -> str:
    """`Settings.resolved_ledger_url` without parsing the whole config (`ledger status`)."""
    return config.get("ledger_url") or default_url(text_setting(config, "state_dir"))


def config_secrets(config: Mapping[str, Any]) -> list[str | None]:
    """`Settings.secrets` without parsing the whole config."""
    keys = [config.get("track_event_secret"), config.get("integration_key")]
    urls = [config.get("api_url"), config.get("track_url")]
    webhook = config.get("alert_webhook_url")
    webhook = webhook if isinstance(webhook, str) else None
    return _secrets(keys, configured_ledger_url(config), urls, webhook)


def _secrets(
    keys: list[str | None], ledger_url: str, urls: list[Any], webhook: str | None
) -> list[str | None]:
    """Every secret of a config, to redact wherever one could be echoed: the keys, the ledger
    URL's password, credentials in 'api_url' and 'track_url', the webhook URL and its token
    (urllib3 logs the path it posts an alert to; see alert.py)."""
    return [
        *keys,
        url_secret(ledger_url),
        *(secret for url in urls for secret in url_secrets(url)),
        *(webhook_secrets(webhook) if webhook else []),
    ]


# --- hosts and URLs -------------------------------------------------------------------------
def is_loopback(host: str) -> bool:
    """Whether `host` is this machine: the only place keys may go over plain http."""
    if host.lower() in ("localhost", "localhost.", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def base_url(config: Mapping[str, Any], key: str) -> str | None:
    """A validated base URL setting (`api_url`, `track_url`), without a trailing slash.

    Keys travel in a header, so they go only over https://, except to a loopback address (the
    bundled emulator, a local proxy)."""
    raw = config.get(key)
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise ConfigError(f"setting '{key}' must be a URL such as https://app.pendo.io")
    try:
        parts = urllib.parse.urlsplit(raw.strip())
        port = parts.port
    except ValueError:
        raise ConfigError(
            f"setting '{key}' is not a valid URL (bad port or host): {shown_url(raw)!r}"
        ) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"setting '{key}' must be an https:// URL with a host, got {shown_url(raw)!r}"
        )
    if port == 0:
        raise ConfigError(f"setting '{key}' has port 0, which no server listens on")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigError(
            f"setting '{key}' must use https:// ({shown_url(raw)!r} is plain http): Pendo keys "
            "are sent only over TLS; plain http is allowed only to a loopback address such as "
            "the bundled emulator"
        )
    return raw.strip().rstrip("/")


def key_region_warnings(settings: Settings) -> list[str]:
    """Keys seen in the wild end in their region (`….us`, `….eu`); one that disagrees with
    'region' gets a 403 on every call, so say so before the first one."""
    if settings.api_url_set:
        return []
    warnings = []
    for setting, key in (
        ("track_event_secret", settings.track_event_secret),
        ("integration_key", settings.integration_key),
    ):
        suffix = key.rsplit(".", 1)[-1].lower() if key and "." in key else ""
        if suffix in REGION_HOSTS and suffix != settings.region:
            warnings.append(
                f"setting '{setting}' ends in '.{suffix}', which looks like a key of Pendo's "
                f"'{suffix}' region, but 'region' is '{settings.region}': Pendo refuses keys "
                "on another region's host; set 'region' to match"
            )
    return warnings


def webhook_url(config: Mapping[str, Any]) -> str | None:
    """`alert_webhook_url`: an https URL (plain http only to a loopback address). The URL is
    itself the secret (Slack's and Teams' carry their token in the path), so no message here
    shows it."""
    raw = config.get("alert_webhook_url")
    if raw is None or raw == "":
        return None
    rule = (
        "setting 'alert_webhook_url' must be an https:// URL with a host (a Slack, Teams or "
        "PagerDuty incoming webhook)"
    )
    if not isinstance(raw, str):
        raise ConfigError(rule)
    try:
        parts = urllib.parse.urlsplit(raw.strip())
        parts.port  # noqa: B018 - a bad port raises here
    except ValueError:
        raise ConfigError(f"{rule}; the value given has a bad host or port") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(rule)
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigError(f"{rule}; plain http is allowed only to a loopback address")
    return raw.strip()


# --- the whole config -------------------------------------------------------------------------
def parse_settings(config: Mapping[str, Any]) -> Settings:
    """Validate the whole config; raise ConfigError naming the setting at the first problem."""
    raw_streams = config.get("streams") or {}
    if not isinstance(raw_streams, Mapping):
        raise ConfigError("setting 'streams' must be an object: stream name -> sync spec")
    streams: dict[str, StreamSpec] = {}
    default_stream = None
    for name, raw in raw_streams.items():
        if name == WILDCARD_STREAM:
            parse_stream_spec(name, raw)  # validate once, applied per stream later
            default_stream = dict(raw)
        else:
            streams[name] = parse_stream_spec(name, raw)
    rate: float | None = None  # unset: adaptive pacing without a ceiling
    if config.get("max_requests_per_second") is not None:
        rate = _number(config, "max_requests_per_second", 0, "a positive number")
    if rate is not None and rate != 0 and rate < MIN_REQUESTS_PER_SECOND:
        raise ConfigError(
            f"setting 'max_requests_per_second' must be at least {MIN_REQUESTS_PER_SECOND:g} "
            f"(0: no client-side limit), got {shown(config.get('max_requests_per_second'))}"
        )
    unmapped = cast(UnmappedStreams, choice_setting(config, "unmapped_streams"))
    concurrency = number_setting(config, "max_concurrency")
    if concurrency != int(concurrency):
        raise ConfigError(f"setting 'max_concurrency' must be a whole number, got {concurrency}")
    # `api_url` serves both hosts when set (emulator, proxy); `track_url` overrides Track's.
    region = choice_setting(config, "region")
    api_url = base_url(config, "api_url")
    track_url = base_url(config, "track_url") or api_url or REGION_TRACK_HOSTS[region]
    return Settings(
        api_url=api_url or REGION_HOSTS[region],
        track_url=track_url,
        region=region,
        api_url_set=bool(config.get("api_url")),
        ledger_url=config.get("ledger_url") or None,
        full_resync=flag_setting(config, "full_resync"),
        max_delete_fraction=number_setting(config, "max_delete_fraction"),
        max_rejected_fraction=number_setting(config, "max_rejected_fraction"),
        dry_run=flag_setting(config, "dry_run"),
        call_log=flag_setting(config, "call_log"),
        rejects_include_values=flag_setting(config, "rejects_include_values"),
        state_dir=text_setting(config, "state_dir"),
        streams=streams,
        default_stream=default_stream,
        unmapped_streams=unmapped,
        max_concurrency=int(concurrency),
        max_requests_per_second=rate,
        request_timeout=number_setting(config, "request_timeout"),
        max_retry_seconds=number_setting(config, "max_retry_seconds"),
        ledger_wait_seconds=number_setting(config, "ledger_wait_seconds"),
        retry_pending_days=number_setting(config, "retry_pending_days"),
        retention_days=number_setting(config, "retention_days"),
        track_event_secret=config.get("track_event_secret") or None,
        integration_key=config.get("integration_key") or None,
        alert_webhook_url=webhook_url(config),
    )
