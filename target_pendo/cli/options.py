"""What the sync and the subcommands share: `--config`, given before a subcommand or after it.
Meltano runs `meltano invoke target-pendo check` as `target-pendo --config FILE check`, so the
group's `--config` reads its files once, hands them to the SDK's sync command and keeps them in
`ctx.meta` for a subcommand, which adds its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from target_pendo.config import GivenConfig
from target_pendo.sdk_hooks import sdk_config_input
from target_pendo.target import config_schema

# Where `target-pendo --config FILE <subcommand>` keeps the config given before the subcommand.
GIVEN_BEFORE = "target_pendo.given_config"
SUBCOMMAND_CONTEXT = {"help_option_names": ["-h", "--help"]}
_F = TypeVar("_F", bound=Callable[..., Any])


def read_group_config(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> Any:
    """The callback of the group's `--config` (the SDK's option): a file that is not a JSON
    object fails as one line naming it, where the SDK would print a traceback."""
    given = GivenConfig.read(value)
    ctx.meta[GIVEN_BEFORE] = given
    return sdk_config_input(dict(given.files), parse_env=given.env)


def config_option(function: _F) -> _F:
    """A subcommand's `--config`, as repeatable as the sync's."""
    option = click.option(
        "--config",
        "config_paths",
        multiple=True,
        metavar="FILE|ENV",
        help="a config JSON file, or ENV for TARGET_PENDO_* variables; may be repeated",
    )
    return option(function)


def subcommand_config(ctx: click.Context, paths: Sequence[str]) -> dict[str, Any]:
    """A subcommand's config: the `--config` given before it, then its own."""
    before: GivenConfig = ctx.meta.get(GIVEN_BEFORE, GivenConfig())
    return load_config(before.then(GivenConfig.read(paths)))


def load_config(given: GivenConfig) -> dict[str, Any]:
    """The config as a sync reads it (the target's whole schema: its settings and the SDK's)."""
    return given.load(config_schema())
