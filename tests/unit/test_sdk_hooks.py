"""Every private or final part of singer-sdk that target-pendo overrides, reads or imports.

They all live in target_pendo/sdk_hooks.py. The SDK may change them in any release (pyproject
pins its minor for that reason): when an upgrade renames, drops or re-signs one, its test here
fails naming it, instead of a run that quietly stops counting lines, validating twice or
writing STATE early. The behaviour itself is tested where it matters (signals, STATE, input
errors); this file pins the seams, and checks that no other module of the package reaches
past them (overrides a private or final SDK name, reads one, or imports a private SDK module).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
from pathlib import Path
from typing import Any

import pytest
from singer_sdk._logging import _setup_console_logging
from singer_sdk.configuration._dict_config import parse_environment_config
from singer_sdk.helpers._batch import StorageTarget
from singer_sdk.helpers._classproperty import classproperty
from singer_sdk.plugin_base import BaseSingerReader, PluginBase, _ConfigInput, _plugin_log_level
from singer_sdk.singerlib.encoding import GenericSingerReader, SimpleSingerReader
from singer_sdk.sinks import BatchSink, Sink
from singer_sdk.target_base import Target

import target_pendo
from target_pendo import sdk_hooks
from target_pendo.cli.main import command
from target_pendo.config import ENV_PREFIX
from target_pendo.sdk_hooks import ReaderHooks, SinkHooks, TargetHooks
from target_pendo.singer.reader import LineCountingReader
from target_pendo.sinks.base import PendoSink
from target_pendo.target import TargetPendo

# (SDK class that defines it, name, its parameters after self, our class that overrides it)
OVERRIDDEN: list[tuple[type, str, list[str], type]] = [
    # settings from the environment typed by their kind, and checked our way
    (PluginBase, "_validate_config", ["raise_errors"], TargetHooks),
    # RECORD without a record object, versions of full-table syncs, BATCH files
    (Target, "_process_record_message", ["message_dict"], TargetHooks),
    (Target, "_process_activate_version_message", ["message_dict"], TargetHooks),
    (Target, "_process_batch_message", ["message_dict"], TargetHooks),
    # STATE watermarks: which rows a STATE covers
    (Target, "_process_state_message", ["message_dict"], TargetHooks),
    # STATE only once every queued batch has its outcome
    (Target, "_write_state_message", ["state"], TargetHooks),
    # SIGTERM / SIGINT: raise and unwind instead of draining inside the handler
    (Target, "_handle_termination", ["signum", "frame"], TargetHooks),
    # final in the SDK: the whole read in one frame (report, signal stop, handlers put back)
    (BaseSingerReader, "listen", ["file_input"], TargetHooks),
    # validation compiled once per stream instead of per record; no per-record batch dump
    (Sink, "_validate_and_parse", ["record"], SinkHooks),
    (Sink, "_after_process_record", ["context"], SinkHooks),
    # an unknown message type is an input error naming the line
    (GenericSingerReader, "_process_unknown_message", ["message_dict"], ReaderHooks),
    # public, overridden in reader.py: malformed JSON names its line
    (SimpleSingerReader, "deserialize_json", ["line"], LineCountingReader),
]

# (SDK class, name, its parameters after self or None for an attribute) that we call or read
USED: list[tuple[type, str, list[str] | None]] = [
    (BaseSingerReader, "_assert_line_requires", ["message_dict", "requires"]),
    (BaseSingerReader, "listen", ["file_input"]),  # the SDK's read loop, called by ours
    (Target, "process_endofpipe", []),
    # what the SDK's command calls with its options' values (sdk_hooks.py writes it out)
    (Target, "invoke", ["about", "about_format", "config", "file_input"]),
    (Target, "get_singer_command", []),
    # set in the SDK's __init__s: the config, the last STATE, the active sinks, the validator
    (PluginBase, "_config", None),
    (Target, "_latest_state", None),
    (Target, "_sinks_active", None),
    (Sink, "_validator", None),
]

# Functions and classes from the SDK's private modules that sdk_hooks.py imports.
PRIVATE_IMPORTS: list[tuple[Any, list[str]]] = [
    # loads the project's .env the SDK's way before config/files.py types TARGET_PENDO_*
    (parse_environment_config, ["config_schema", "prefix", "dotenv_path"]),
    # the BATCH files' storage (local paths and fsspec URLs), as the SDK's taps write them
    (StorageTarget.from_url, ["url"]),
    (StorageTarget.split_url, ["url"]),
    (StorageTarget.open, ["filename", "mode"]),
    # the console logging the SDK's `cli` sets up, which cli/main.py sets up for a sync only
    (_setup_console_logging, ["log_level"]),
    (_plugin_log_level, ["plugin_name"]),
]

# The SDK's classes ours derive from, with their bases: whose private names are the SDK's.
SDK_CLASSES = [
    c
    for ours in (TargetHooks, SinkHooks, ReaderHooks)
    for c in ours.__mro__
    if c.__module__.startswith("singer_sdk.")
]
PACKAGE = Path(target_pendo.__file__).parent


def _parameters(function: Any) -> list[str]:
    function = getattr(function, "__func__", function)  # a classmethod as found in vars()
    return [p for p in inspect.signature(function).parameters if p not in ("self", "cls")]


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _sdk_private_names() -> set[str]:
    """Private names the SDK's classes define or set on their instances."""
    names: set[str] = set()
    for sdk_class in SDK_CLASSES:
        names |= {n for n in vars(sdk_class) if _private(n)}
        names |= set(re.findall(r"self\.(_[a-z]\w*)\s*[:=]", inspect.getsource(sdk_class)))
    return names


@pytest.mark.parametrize(
    ("sdk_class", "name", "parameters", "ours"),
    OVERRIDDEN,
    ids=[f"{c.__name__}.{n}" for c, n, _, _ in OVERRIDDEN],
)
def test_each_overridden_sdk_hook_still_exists_with_its_parameters(
    sdk_class: type, name: str, parameters: list[str], ours: type
) -> None:
    assert name in vars(sdk_class), f"singer-sdk's {sdk_class.__name__} no longer has {name}"
    assert _parameters(vars(sdk_class)[name]) == parameters, (
        f"singer-sdk's {sdk_class.__name__}.{name} has new parameters"
    )
    assert issubclass(ours, sdk_class)
    assert name in vars(ours), f"{ours.__name__} should override {name}"
    assert _parameters(vars(ours)[name]) == parameters


def test_the_environment_settings_hook_is_still_a_class_property() -> None:
    # sdk_hooks.py replaces it to type TARGET_PENDO_* values by each setting's kind
    assert isinstance(vars(PluginBase).get("_env_var_config"), classproperty), "_env_var_config"
    assert isinstance(vars(TargetHooks)["_env_var_config"], classproperty)


def test_the_environment_prefix_is_the_sdks() -> None:
    # a sync reads the variables (and `check`, `ledger`, `report` too) under this prefix
    assert isinstance(vars(PluginBase).get("_env_var_prefix"), classproperty), "_env_var_prefix"
    assert TargetPendo._env_var_prefix == ENV_PREFIX


def test_listen_is_the_one_final_sdk_method_overridden() -> None:
    # when the SDK stops marking it final, the `type: ignore[misc]` in sdk_hooks.py can go
    assert getattr(vars(BaseSingerReader)["listen"], "__final__", False), "listen"


def test_the_reader_class_the_target_counts_lines_with_is_the_sdks_seam() -> None:
    assert "message_reader_class" in vars(BaseSingerReader), "message_reader_class"
    assert TargetPendo.message_reader_class is LineCountingReader


def test_our_invoke_takes_the_sdks_options_and_full_resync() -> None:
    sdk = _parameters(vars(Target)["invoke"])
    assert _parameters(vars(TargetHooks)["invoke"]) == [*sdk, "full_resync"], "invoke"
    options = {p.name for p in command().params}
    assert options >= {*sdk, "full_resync"}, "get_singer_command"


def test_the_cli_config_the_sdk_hands_to_invoke_keeps_its_fields() -> None:
    # sdk_hooks.TargetHooks.invoke reads the SDK's `--config` result by these names
    fields = _ConfigInput.__dataclass_fields__
    assert list(fields) == ["config", "parse_env"], "_ConfigInput"


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
        assert _parameters(vars(sdk_class)[name]) == parameters, name


@pytest.mark.parametrize(
    ("function", "parameters"),
    PRIVATE_IMPORTS,
    ids=[f.__qualname__ for f, _ in PRIVATE_IMPORTS],
)
def test_each_private_sdk_function_we_import_keeps_its_parameters(
    function: Any, parameters: list[str]
) -> None:
    assert _parameters(function) == parameters, function.__qualname__


def test_our_classes_take_the_hooks_from_sdk_hooks() -> None:
    assert issubclass(TargetPendo, TargetHooks)
    assert issubclass(PendoSink, SinkHooks)
    assert issubclass(PendoSink, BatchSink)
    assert issubclass(LineCountingReader, ReaderHooks)


# --- nothing outside sdk_hooks.py reaches past it -------------------------------------------
def _modules() -> list[str]:
    found = pkgutil.walk_packages(target_pendo.__path__, f"{target_pendo.__name__}.")
    return [m.name for m in found if not m.name.endswith("__main__")]  # that one runs the CLI


def test_no_other_module_overrides_a_private_or_final_sdk_name() -> None:
    offending = []
    for module_name in _modules():
        if module_name == sdk_hooks.__name__:
            continue
        module = importlib.import_module(module_name)
        for cls in vars(module).values():
            if not isinstance(cls, type) or cls.__module__ != module_name:
                continue
            sdk_bases = [c for c in cls.__mro__ if c.__module__.startswith("singer_sdk.")]
            for name in set(vars(cls)) - {"_abc_impl"}:  # set by ABCMeta on every class
                inherited = [vars(b)[name] for b in sdk_bases if name in vars(b)]
                final = any(getattr(a, "__final__", False) for a in inherited)
                if inherited and (_private(name) or final):
                    offending.append(f"{cls.__qualname__}.{name} ({module_name})")
    offending.sort()
    assert offending == [], "move these overrides to sdk_hooks.py: " + ", ".join(offending)


def test_no_other_module_imports_a_private_sdk_module_or_reads_a_private_sdk_name() -> None:
    private_names = _sdk_private_names()
    offending = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == Path(sdk_hooks.__file__):
            continue
        where = path.relative_to(PACKAGE.parent)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            modules: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module]
                modules += [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            for module in modules:
                parts = module.split(".")
                if parts[0] == "singer_sdk" and any(_private(p) for p in parts):
                    offending.append(f"{where}:{node.lineno} imports {module}")
            if isinstance(node, ast.Attribute) and node.attr in private_names:
                offending.append(f"{where}:{node.lineno} reads {node.attr}")
    assert offending == [], "move these to sdk_hooks.py: " + "; ".join(offending)
