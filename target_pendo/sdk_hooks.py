"""Every private or final part of singer-sdk that target-pendo overrides, reads or imports,
each a thin override calling a plainly named method of ours: an SDK release that renames one
fails here and in tests/unit/test_sdk_hooks.py, not as a run that quietly writes STATE early.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from contextlib import AbstractContextManager
from types import FrameType
from typing import IO, Any

from singer_sdk._logging import _setup_console_logging
from singer_sdk.configuration._dict_config import parse_environment_config
from singer_sdk.helpers._batch import StorageTarget
from singer_sdk.helpers._classproperty import classproperty
from singer_sdk.plugin_base import _ConfigInput, _plugin_log_level
from singer_sdk.singerlib.encoding import SimpleSingerReader
from singer_sdk.sinks import BatchSink
from singer_sdk.sinks.core import BaseJSONSchemaValidator
from singer_sdk.target_base import Target


def load_dotenv(prefix: str) -> None:
    """The project's `.env` into the environment, found as the SDK finds it."""
    parse_environment_config({"properties": {}}, prefix)


def sdk_config_input(config: dict[str, Any], *, parse_env: bool) -> _ConfigInput:
    """What the SDK's `--config` callback hands `invoke`: the settings, and whether `ENV`."""
    return _ConfigInput(config=config, parse_env=parse_env)


def setup_console_logging(plugin_name: str) -> None:
    """The SDK's console logging (level from <PLUGIN>_LOGLEVEL or LOGLEVEL); for a sync only."""
    _setup_console_logging(log_level=_plugin_log_level(plugin_name=plugin_name))


def open_batch_file(url: str) -> AbstractContextManager[IO[bytes]]:
    """One file of a BATCH message, through the SDK's storage helper (paths, `file://`, fsspec)."""
    head, tail = StorageTarget.split_url(url)
    return StorageTarget.from_url(head).open(tail, mode="rb")


class TargetHooks(Target):
    """The target's side; each private hook only calls one of our abstract methods (target.py)."""

    @classproperty
    def _env_var_config(cls) -> dict[str, Any]:
        """`--config ENV`: the SDK reads the environment through this class property."""
        return cls.environment_settings()

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        """The SDK's schema check, on the config as we prepare it (a Meltano number as text)."""
        self._config = self.prepared_config(self._config)
        return super()._validate_config(raise_errors=raise_errors)

    def _process_record_message(self, message_dict: dict[str, Any]) -> None:
        self.check_record_message(message_dict)
        super()._process_record_message(message_dict)

    def _process_state_message(self, message_dict: dict[str, Any]) -> None:
        super()._process_state_message(message_dict)
        self.state_message_read()

    def _process_activate_version_message(self, message_dict: dict[str, Any]) -> None:
        self.check_activate_version_message(message_dict)
        super()._process_activate_version_message(message_dict)

    def _process_batch_message(self, message_dict: dict[str, Any]) -> None:
        for message in self.batch_record_messages(message_dict):
            self._process_record_message(message)

    def _write_state_message(self, state: dict[str, Any]) -> None:
        if self.state_may_be_written():
            super()._write_state_message(state)

    def write_state_now(self, state: dict[str, Any]) -> None:
        """Write STATE the SDK's way, without waiting for the sinks (a stop on a signal)."""
        super()._write_state_message(state)

    def assert_line_requires(self, message_dict: dict[str, Any], requires: set[str]) -> None:
        """The SDK's check that a message has its required keys (names the missing one)."""
        self._assert_line_requires(message_dict, requires=requires)

    @property
    def latest_state(self) -> dict[str, Any] | None:
        """The last STATE read (the SDK keeps it until it writes it)."""
        return self._latest_state

    def active_sink(self, stream_name: str) -> Any:
        """The stream's current sink, or None (the SDK's registry of active sinks)."""
        return self._sinks_active.get(stream_name)

    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        self.on_stop_signal(signum)

    # Final in the SDK; the report, the signal stop and the handlers put back need one frame.
    def listen(self, file_input: IO[str] | None = None) -> None:  # type: ignore[misc]
        self.read_all_input(file_input)

    def listen_the_sdks_way(self, file_input: IO[str] | None) -> None:
        """The SDK's read loop: every message to its handler, then the end of the pipe."""
        super().listen(file_input)

    @classmethod
    def invoke(  # type: ignore[override]
        cls,
        *,
        about: bool = False,
        about_format: str | None = None,
        config: _ConfigInput | None = None,
        file_input: IO[str] | None = None,
        full_resync: bool = False,
    ) -> None:
        """The SDK's `Target.invoke`, written out to hand the target `--full-resync`."""
        super(Target, cls).invoke(about=about, about_format=about_format)
        cls.print_version(print_fn=cls.logger.info)
        given = config or _ConfigInput()
        cls.run_sync(
            given.config, parse_env=given.parse_env, file_input=file_input, full_resync=full_resync
        )

    @classmethod
    @abc.abstractmethod
    def environment_settings(cls) -> dict[str, Any]: ...
    @abc.abstractmethod
    def prepared_config(self, config: dict[str, Any]) -> dict[str, Any]: ...
    @abc.abstractmethod
    def check_record_message(self, message_dict: dict[str, Any]) -> None: ...
    @abc.abstractmethod
    def state_message_read(self) -> None: ...
    @abc.abstractmethod
    def check_activate_version_message(self, message_dict: dict[str, Any]) -> None: ...
    @abc.abstractmethod
    def batch_record_messages(self, message_dict: dict[str, Any]) -> Iterator[dict[str, Any]]: ...
    @abc.abstractmethod
    def state_may_be_written(self) -> bool: ...
    @abc.abstractmethod
    def on_stop_signal(self, signum: int) -> None: ...
    @abc.abstractmethod
    def read_all_input(self, file_input: IO[str] | None) -> None: ...
    @classmethod
    @abc.abstractmethod
    def run_sync(
        cls,
        config: dict[str, Any],
        *,
        parse_env: bool,
        file_input: IO[str] | None,
        full_resync: bool,
    ) -> None: ...


class SinkHooks(BatchSink):
    """The sinks' side: record validation and the per-record debug dump."""

    def _validate_and_parse(self, record: dict[str, Any]) -> dict[str, Any]:
        """Validation is ours (sinks/base.py): the record goes on as the tap sent it, since
        mapping parses timestamps itself and reports a bad one against its row."""
        return record

    def _after_process_record(self, context: dict[str, Any]) -> None:
        """Not the SDK's: it logs the whole batch context, every row's data, at DEBUG."""

    @property
    def validator(self) -> BaseJSONSchemaValidator | None:
        """The validator the SDK built from `get_validator` (None when validation is off)."""
        return self._validator


class ReaderHooks(SimpleSingerReader):
    """The message reader's side: an unknown message type."""

    def _process_unknown_message(self, message_dict: dict[str, Any]) -> None:
        raise self.unknown_message(message_dict)

    @abc.abstractmethod
    def unknown_message(self, message_dict: dict[str, Any]) -> Exception: ...
