"""target-pendo's settings, from their declaration to the typed view a run uses: ``schema.py``
declares every setting once, ``streams.py`` checks one stream's spec, ``settings.py`` the whole
config, ``text.py`` reads settings given as text and ``files.py`` the `--config` files and
`ENV`. It imports nothing of the CLI or the target: both import it.
"""

from target_pendo.config.files import (
    ENV,
    ENV_PREFIX,
    GivenConfig,
    read_config_file,
    read_environment,
)
from target_pendo.config.schema import DEFAULTS, REGION_HOSTS, REGION_TRACK_HOSTS, declared_schema
from target_pendo.config.settings import (
    Settings,
    config_secrets,
    configured_ledger_url,
    key_region_warnings,
    number_setting,
    parse_settings,
)
from target_pendo.config.streams import (
    WILDCARD_STREAM,
    EventsSpec,
    ObjectsSpec,
    StreamSpec,
    is_valid_property_name,
    parse_stream_spec,
)
from target_pendo.config.text import environment_config, prepare_config, setting_from_text

__all__ = [
    "DEFAULTS",
    "ENV",
    "ENV_PREFIX",
    "REGION_HOSTS",
    "REGION_TRACK_HOSTS",
    "WILDCARD_STREAM",
    "EventsSpec",
    "GivenConfig",
    "ObjectsSpec",
    "Settings",
    "StreamSpec",
    "config_secrets",
    "configured_ledger_url",
    "declared_schema",
    "environment_config",
    "is_valid_property_name",
    "key_region_warnings",
    "number_setting",
    "parse_settings",
    "parse_stream_spec",
    "prepare_config",
    "read_config_file",
    "read_environment",
    "setting_from_text",
]
