"""Every alternative the contract leaves open, as one switch each (../shared/pendo-api.md, rev. 3).

The defaults are the most realistic Pendo the contract supports; each other value is a reading
the contract says a client must also survive. Facts marked [I] in the contract are the ones
with alternatives: a client tested only against the defaults could still break on a real
subscription, so tests flip these switches to prove it does not.

`Switches` is frozen: change it with `Emulator.set_switches(name=value)` (or
`POST /_emulator/switches`), which validates and swaps the whole object at once, so a request
never sees half of an update.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

_NO_CHOICES: tuple[Any, ...] = ()


def _switch(default: Any, values: tuple[Any, ...], doc: str) -> Any:
    """A dataclass field carrying its allowed values and its docstring (shown by `describe`).

    `values` empty means "not a closed list": the field's own check in `__post_init__` applies.
    """
    return field(default=default, metadata={"values": values, "doc": doc})


@dataclass(frozen=True)
class Switches:
    """The emulator's behaviour where Pendo's is not documented; defaults model real Pendo."""

    schema_case: str = _switch(
        "capitalised",
        ("capitalised", "lowercase"),
        "Attribute keys of `GET /api/v1/metadata/schema/{kind}`. 'capitalised': `Type`, "
        "`DisplayName`, `ElementType`, `ElementFormat`, `Dirty` (rev. 2 item 1, section "
        "'Field schema': three production integrations). 'lowercase': revision 1's `type`, "
        "`displayName`, `elementType`, `elementFormat`, `dirty` ('Read `Type` and fall back "
        "to `type`, so either casing works').",
    )
    missing_field: str = _switch(
        "batch",
        ("batch", "item"),
        "A value for a custom field that does not exist or `isDeleted` (and a deleted agent "
        "field, see `deleted_agent_field`). 'batch': 400 for the whole call, plain text "
        "'missing field mappings' naming the field, nothing written (section 'Metadata': "
        "'400 ... malformed JSON or missing field mappings'; rev. 3 item 2). 'item': only "
        "that item fails, as an `errors` entry of a 200 (the wording is [I] since rev. 3 "
        "item 3).",
    )
    bad_value: str = _switch(
        "item",
        ("item", "batch"),
        "A value that does not fit its field's type, and values refused by "
        "`reject_metadata` rules. 'item': that item fails alone (200, an `errors` entry, "
        "`failed` counts it; rev. 2 item 2). 'batch': 400 for the whole call naming the first "
        "bad item, nothing written (the Hightouch seed, section 'Whole-batch refusal').",
    )
    error_shape: str = _switch(
        "object",
        ("object", "string", "string_no_id", "absent"),
        "Shape of an `errors` entry, 'not documented [I]' (section 'Metadata', 200 answer). "
        '\'object\': `{"visitorId"|"accountId": id, "error": text}`; \'string\': '
        "`\"u-44: value for plantier is not a number\"`; 'string_no_id': the text alone; "
        "'absent': no `errors` key at all, so only `failed` tells (rev. 2 item 2: a row must "
        "never be recorded as sent when a failure cannot be tied to an id).",
    )
    ok_body: str = _switch(
        "json",
        ("json", "html", "empty_object"),
        "Body of a 200 answer to a metadata write. 'json': `{total, updated, failed, missing, "
        "errors}` (rev. 3 item 4). 'html': a proxy's HTML page (text/html); 'empty_object': "
        "`{}`. Rev. 3 item 4: such a 200 'confirms nothing'.",
    )
    ok_body_writes: bool = _switch(
        False,
        (False, True),
        "Whether a metadata call answered with a non-JSON 200 (`ok_body` 'html' or "
        "'empty_object') was written. False (default, the adversarial case): a proxy answered "
        "and Pendo never saw the call, so a client that takes the 200 as confirmation loses "
        "rows silently. True: Pendo wrote it and something on the way mangled the answer "
        "(re-sending is then harmless, values are idempotent).",
    )
    item_budget: int | None = _switch(
        5000,
        _NO_CHOICES,
        "Items one metadata call may hold before Pendo's 5-minute server budget runs out: a "
        "larger call answers 408 (section 'Metadata', status codes; rev. 2 item 4). A "
        "positive integer, or None for no budget. The real limit is time, not items [I]; an "
        "item count makes tests deterministic.",
    )
    budget_partial_write: bool = _switch(
        False,
        (False, True),
        "What a call past `item_budget` wrote before its 408. False: nothing. True: its first "
        "`item_budget` items (the server ran out of time part way). The contract only says "
        "'a 408 ... means send smaller calls' (rev. 3 item 3) [I].",
    )
    block_undefined_agent_fields: bool = _switch(
        False,
        (False, True),
        "Pendo's subscription setting 'Block undefined agent metadata fields' (section "
        "'Creating fields' [C]). Off: writing an unknown agent field creates it, typed from "
        "the value. On: such values are discarded silently (200, the item counted updated, "
        "the field never appears in the schema); fields made through the create route are "
        "still accepted (rev. 3 item 1).",
    )
    deleted_agent_field: str = _switch(
        "refuse",
        ("refuse", "recreate"),
        "A value for an agent field whose schema entry `isDeleted`. 'refuse': treated as a "
        "missing field mapping (follows `missing_field`), because rev. 3 item 2 says a "
        "deleted entry 'is not a field that can be written' and only the create route "
        "undeletes it. 'recreate': the value route undeletes it, as it creates unknown agent "
        "fields (the Hightouch reading of section 'Creating fields').",
    )
    unknown_ids: str = _switch(
        "missing",
        ("missing", "create"),
        "A metadata item whose id Pendo does not have. 'missing': listed in `missing`, not "
        "created unless `?create=true` (rev. 3 item 5, [C]). 'create': created anyway, the "
        "third-party destination's claim rev. 3 item 5 rejects.",
    )
    null_value: str = _switch(
        "clear",
        ("clear", "ignore", "invalid"),
        "A `null` metadata value: 'Whether a null value clears a field is not documented [I: "
        "it does]'. 'clear': stored as null. 'ignore': the old value stays. 'invalid': a bad "
        "value (follows `bad_value`).",
    )
    parent_account_routes: bool = _switch(
        True,
        (True, False),
        "Whether the `parentAccount` routes exist. True: they work like `account` ones with "
        "id key `accountId` [I]. False: 404, since 'parentAccount is not evidenced anywhere "
        "[I] (treat its routes as unverified)' (section 'Metadata').",
    )
    track_bad_secret_status: int = _switch(
        403,
        (403, 401),
        "Status for a missing or wrong Track Event secret on `/data/track`, empty body: 'not "
        "documented [I: 401/403]' (section 'Hosts and keys').",
    )
    api_bad_key_status: int = _switch(
        403,
        (403, 401),
        "Status for a missing or wrong integration key on `/api/v1/*`, empty body: 403 [T] "
        "('some clients also treat 401 so', section 'Hosts and keys').",
    )
    error_body: str = _switch(
        "text",
        ("text", "json", "empty"),
        "Body of the emulator's 400/404/408/429 answers: 'Error bodies are plain text, JSON "
        "(`{\"message\": ...}`) or empty [T]: never assume a JSON error body' (section 'Rate "
        "limits and errors').",
    )
    field_route_body: str = _switch(
        "empty",
        ("empty", "text"),
        "Body of a 200 from the field create/delete routes: 'not documented [I: 200, empty or "
        "plain text]' (section 'Creating fields').",
    )
    number_field_type: str = _switch(
        "float",
        ("float", "integer"),
        "Schema `Type` of a field created with type 'number' through "
        "`POST /api/v1/metadata/schema/{kind}/{group}`. 'float': the UI's two Number types "
        "(section 'Field schema', UI types [C]) make 'number' the general one [I]; 'integer' "
        "the other reading.",
    )
    field_create_types: str = _switch(
        "documented",
        ("documented", "schema"),
        "Type names the field create route accepts. 'documented': only `string`, `number`, "
        "`time`, `boolean` (the Postman example, rev. 3 item 1); any other is a 400. "
        "'schema': also the schema's own names (`integer`, `float`, `date`, `list` for agent "
        'fields, `""`) [I].',
    )
    rate_limit_scope: str = _switch(
        "key_endpoint",
        ("key_endpoint", "key"),
        "Buckets of `rate_limit`: 'key_endpoint': one per key and endpoint ('100 calls per "
        "second to any single endpoint [T] - so Track and metadata have separate budgets'). "
        "'key': one per key for every route.",
    )
    rate_limit_retry_after: int | None = _switch(
        None,
        _NO_CHOICES,
        "Retry-After seconds on the rate limiter's 429: 'No source shows `Retry-After`' "
        "(None, default); a non-negative integer sends it (section 'Rate limits').",
    )

    def __post_init__(self) -> None:
        for spec in dataclasses.fields(self):
            value = getattr(self, spec.name)
            choices = spec.metadata["values"]
            if choices and not any(value == c and type(value) is type(c) for c in choices):
                raise ValueError(
                    f"switch {spec.name} must be one of {list(choices)}, got {value!r}"
                )
        if self.item_budget is not None and (
            not isinstance(self.item_budget, int)
            or isinstance(self.item_budget, bool)
            or self.item_budget < 1
        ):
            raise ValueError(
                f"switch item_budget must be a positive integer or null, got {self.item_budget!r}"
            )
        retry = self.rate_limit_retry_after
        if retry is not None and (
            not isinstance(retry, int) or isinstance(retry, bool) or retry < 0
        ):
            raise ValueError(
                f"switch rate_limit_retry_after must be a non-negative integer or null, "
                f"got {retry!r}"
            )

    # --- conversions ------------------------------------------------------------------------
    def updated(self, changes: dict[str, Any]) -> Switches:
        """A copy with `changes` applied; unknown names and bad values raise ValueError."""
        names = {spec.name for spec in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ValueError(f"unknown switch(es) {unknown}; known: {sorted(names)}")
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        return {spec.name: getattr(self, spec.name) for spec in dataclasses.fields(self)}

    @classmethod
    def describe(cls) -> dict[str, dict[str, Any]]:
        """name -> {"default", "values", "doc"}: the list a test author (or
        `GET /_emulator/switches`) reads to find the behaviour to flip."""
        described: dict[str, dict[str, Any]] = {}
        for spec in dataclasses.fields(cls):
            values = list(spec.metadata["values"]) or None
            described[spec.name] = {
                "default": spec.default,
                "values": values,
                "doc": spec.metadata["doc"],
            }
        return described
