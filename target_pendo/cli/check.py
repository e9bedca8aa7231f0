"""`target-pendo check --config c.json`: are the keys right, before the first sync?

Both keys are validated with calls that change nothing in Pendo: the integration key with
`GET /api/v1/token/verify` (which also says whether it may write), the Track secret with an
empty Track body that Pendo refuses as an event (400) when the key is right, and with 403 when
it is not. Prints one line per key; exits 1 when a configured key fails.
"""

from __future__ import annotations

import click

from target_pendo.cli.options import SUBCOMMAND_CONTEXT, config_option, subcommand_config
from target_pendo.config import config_secrets, parse_settings
from target_pendo.errors import PendoError
from target_pendo.network import Network
from target_pendo.observe.redact import Redactor, shown_url
from target_pendo.pendo.client import PendoClient


@click.command(
    "check",
    context_settings=SUBCOMMAND_CONTEXT,
    help=__doc__,
    short_help="Check both keys against Pendo; sends no data.",
)
@config_option
@click.pass_context
def check_command(ctx: click.Context, config_paths: tuple[str, ...]) -> int:
    config = subcommand_config(ctx, config_paths)
    settings = parse_settings(config)
    network = Network.from_environment()
    client = PendoClient(
        settings.api_url,
        track_url=settings.track_url,
        track_event_secret=settings.track_event_secret,
        integration_key=settings.integration_key,
        request_timeout=settings.request_timeout,
        max_retry_seconds=min(settings.max_retry_seconds, 30),
        redact=Redactor([*config_secrets(config), *network.secrets()]),  # the keys among them
        network=network,
    )
    failures = 0
    try:
        print(f"Pendo at {shown_url(settings.api_url)} (Track: {shown_url(settings.track_url)})")
        if settings.track_event_secret:
            try:
                client.check_track_secret()
                print("  track_event_secret: ok (Track API accepts it)")
            except PendoError as exc:
                failures += 1
                print(f"  track_event_secret: FAILED: {client.redact(str(exc))}")
        else:
            print("  track_event_secret: not set (event streams cannot sync)")
        if settings.integration_key:
            try:
                if client.verify_integration_key():
                    print("  integration_key: ok (valid, with write access)")
                else:
                    failures += 1
                    print(
                        "  integration_key: FAILED: valid but read-only; object sync needs an "
                        "Integration Key with 'Allow write access'"
                    )
            except PendoError as exc:
                failures += 1
                print(f"  integration_key: FAILED: {client.redact(str(exc))}")
        else:
            print("  integration_key: not set (object streams cannot sync)")
    finally:
        client.close()
    return 1 if failures else 0
