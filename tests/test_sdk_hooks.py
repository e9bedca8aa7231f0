"""Every private or final part of singer-sdk that target-pendo overrides or reads, in one list.

The SDK may change these in any release (pyproject pins its minor for that reason). When an
upgrade renames, drops or re-signs one of them, this file fails naming it, instead of a run
that quietly stops counting lines, validating twice or writing STATE early. Each entry says
what target-pendo relies on; the behaviour itself is tested where it matters (signals, STATE,
input errors), this file only pins the seams.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from singer_sdk.configuration._dict_config import parse_environment_config
from singer_sdk.helpers._batch import StorageTarget
from singer_sdk.helpers._classproperty import classproperty
from singer_sdk.plugin_base import BaseSingerReader, PluginBase
from singer_sdk.singerlib.encoding import GenericSingerReader, SimpleSingerReader
from singer_sdk.sinks import Sink
from singer_sdk.target_base import Target

from target_pendo.reader import LineCountingReader
from target_pendo.sinks.base import PendoSink
from target_pendo.target import TargetPendo

# (SDK class that defines it, name, its parameters after self, our class that overrides it)
OVERRIDDEN: list[tuple[type, str, list[str], type]] = [
    # settings from the environment typed by their kind, and checked our way
    (PluginBase, "_validate_config", ["raise_errors"], TargetPendo),
    # RECORD without a record object, versions of full-table syncs, BATCH files
    (Target, "_process_record_message", ["message_dict"], TargetPendo),
    (Target, "_process_activate_version_message", ["message_dict"], TargetPendo),
    (Target, "_process_batch_message", ["message_dict"], TargetPendo),
    # STATE watermarks: which rows a STATE covers
    (Target, "_process_state_message", ["message_dict"], TargetPendo),
    # STATE only once every queued batch has its outcome
    (Target, "_write_state_message", ["state"], TargetPendo),
    # SIGTERM / SIGINT: raise and unwind instead of draining inside the handler
    (Target, "_handle_termination", ["signum", "frame"], TargetPendo),
    # final in the SDK: the whole read in one frame (report, signal stop, handlers put back)
    (BaseSingerReader, "listen", ["file_input"], TargetPendo),
    # validation compiled once per stream instead of per record; no per-record batch dump
    (Sink, "_validate_and_parse", ["record"], PendoSink),
    (Sink, "_after_process_record", ["context"], PendoSink),
    # an unknown message type is an input error naming the line
    (GenericSingerReader, "_process_unknown_message", ["message_dict"], LineCountingReader),
    (SimpleSingerReader, "deserialize_json", ["line"], LineCountingReader),
]

# (SDK class, name, its parameters after self or None for an attribute) that we call or read
USED: list[tuple[type, str, list[str] | None]] = [
    (BaseSingerReader, "_assert_line_requires", ["message_dict", "requires"]),
    (Target, "process_endofpipe", []),
    # set in Target.__init__ / _process_state_message: the last STATE, whether sinks are active
    (Target, "_latest_state", None),
    (Target, "_sinks_active", None),
]


# Functions and classes from the SDK's private modules that we import.
PRIVATE_IMPORTS: list[tuple[Any, list[str]]] = [
    # loads the project's .env the SDK's way before target.py types TARGET_PENDO_* itself
    (parse_environment_config, ["config_schema", "prefix", "dotenv_path"]),
    # the BATCH files' storage (local paths and fsspec URLs), as the SDK's taps write them
    (StorageTarget.from_url, ["url"]),
    (StorageTarget.split_url, ["url"]),
    (StorageTarget.open, ["filename", "mode"]),
]


def _parameters(function: Any) -> list[str]:
    return [p for p in inspect.signature(function).parameters if p != "self"]


@pytest.mark.parametrize(
    ("sdk_class", "name", "parameters", "ours"),
    OVERRIDDEN,
    ids=[f"{c.__name__}.{n}" for c, n, _, _ in OVERRIDDEN],
)
def test_each_overridden_sdk_hook_still_exists_with_its_parameters(
    sdk_class: type, name: str, parameters: list[str], ours: type
) -> None:
    assert name in vars(sdk_class), f"singer-sdk's {sdk_class.__name__} no longer has {name}"
    assert _parameters(vars(sdk_class)[name]) == parameters
    assert issubclass(ours, sdk_class)
    assert name in vars(ours), f"{ours.__name__} should override {name}"
    assert _parameters(vars(ours)[name]) == parameters


def test_the_environment_settings_hook_is_still_a_class_property() -> None:
    # target.py replaces it to type TARGET_PENDO_* values by each setting's kind
    assert isinstance(vars(PluginBase)["_env_var_config"], classproperty)
    assert isinstance(vars(TargetPendo)["_env_var_config"], classproperty)


def test_the_reader_class_the_target_counts_lines_with_is_the_sdks_seam() -> None:
    assert "message_reader_class" in vars(BaseSingerReader)
    assert TargetPendo.message_reader_class is LineCountingReader


@pytest.mark.parametrize(
    ("sdk_class", "name", "parameters"), USED, ids=[f"{c.__name__}.{n}" for c, n, _ in USED]
)
def test_each_sdk_member_we_call_or_read_still_exists(
    sdk_class: type, name: str, parameters: list[str] | None
) -> None:
    if parameters is None:
        source = "".join(inspect.getsource(c) for c in sdk_class.__mro__ if c is not object)
        assert f"self.{name} =" in source or f"self.{name}:" in source, name
    else:
        assert name in vars(sdk_class), name
        assert _parameters(vars(sdk_class)[name]) == parameters


@pytest.mark.parametrize(
    ("function", "parameters"),
    PRIVATE_IMPORTS,
    ids=[f.__qualname__ for f, _ in PRIVATE_IMPORTS],
)
def test_each_private_sdk_function_we_import_keeps_its_parameters(
    function: Any, parameters: list[str]
) -> None:
    assert [p for p in _parameters(function) if p != "cls"] == parameters
