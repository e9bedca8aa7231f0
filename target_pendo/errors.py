"""Typed errors that end a run; each names what the user should change, never a secret.
Problems with one row are not errors: they become rejected rows and the run goes on."""

from __future__ import annotations


class TargetPendoError(Exception):
    """Base class: the CLI prints these as one clear line instead of a traceback."""


class ConfigError(TargetPendoError):
    """The configuration cannot work; raised before any data is read or sent."""


class StreamConfigError(ConfigError):
    """A stream's spec does not fit the stream's schema or the rules for its sync kind."""

    def __init__(self, stream: str, message: str) -> None:
        super().__init__(f"stream '{stream}': {message}")
        self.stream = stream


class UnmappedStreamError(ConfigError):
    """A stream arrived that the `streams` setting does not route anywhere."""


class CallEnded(TargetPendoError):
    """An error that can end a call to Pendo before a usable answer (a fatal answer, a stop)."""

    # An attempt went on the wire and got no answer, so Pendo may hold what it carried: a Track
    # call in doubt stays in flight in the ledger; one that never reached Pendo is not sent.
    in_doubt: bool = False


class PendoError(CallEnded):
    """Pendo answered in a way that stops the run."""


class PendoAuthError(PendoError):
    """401/403: the key is wrong, from another region, or lacks write access."""


class PendoNotFoundError(PendoError):
    """404: the route does not exist on that host (wrong `region` or `api_url`)."""


class PendoUnavailableError(PendoError):
    """Pendo kept failing (5xx, 429, timeouts, resets) past `max_retry_seconds`."""


class PendoNetworkError(PendoError):
    """TLS that does not verify, or a proxy that refuses: no retry mends it."""


class PendoRequestError(PendoError):
    """Another 4xx the target cannot recover from by retrying or rejecting a row."""


class RejectedRowsAlert(TargetPendoError):
    """Over `max_rejected_fraction` rejected: the rest delivered, STATE written, exit non-zero."""


class DeleteGuardError(TargetPendoError):
    """A run would clear or delete more of a stream's objects than `max_delete_fraction`."""


class PendoRedirectError(PendoError):
    """Pendo's host (or something in between) answered a redirect: never followed with a key."""


class PendoUnconfirmedError(PendoError):
    """A 200 answer that is not Pendo's JSON confirms nothing; asked again, it stayed so."""


class PendoFieldCreateError(PendoError):
    """Pendo refused to create a field `create_missing_fields` asked for."""


class FieldGoneError(StreamConfigError):
    """A mapped field disappeared from Pendo (deleted) while the run went."""


class StopRequested(CallEnded):
    """The run was asked to stop (SIGTERM, SIGINT): nothing more is sent."""


class StopSignal(BaseException):
    """Raised by the SIGTERM/SIGINT handler; a BaseException: no `except Exception` swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class RunStopped(TargetPendoError):
    """The run stopped on a signal; `exit_code` is 128 + the signal's number."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code
