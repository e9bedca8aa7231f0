"""What the emulated Pendo holds to, written from the API contract (../shared/pendo-api.md,
revision 4), section by section: never imported from target_pendo, so that a limit the client
got wrong is a limit the emulator disagrees with. [C] documented by Pendo, [T] seen in
independent clients, [I] inferred (a switch in ``switches.py`` covers the other reading)."""

from __future__ import annotations

# Authentication: every request carries this header, the integration key (or, on Track, the
# app's Track Event Shared Secret) [C].
KEY_HEADER = "x-pendo-integration-key"

# Metadata writes: the groups a write may set [T], and each kind's id key in a body item [T];
# a parent account's id key is unknown [I: accountId].
WRITABLE_GROUPS = ("agent", "custom")
ID_KEYS = {"visitor": "visitorId", "account": "accountId", "parentAccount": "accountId"}

# Track: a `properties` object over 512 bytes of JSON is shown as "too large" [C]; events more
# than 7 days old are accepted but not processed [C].
MAX_PROPERTIES_BYTES = 512
MAX_EVENT_AGE_MS = 7 * 24 * 60 * 60 * 1000

# Values: text must be under 1,500 characters [C, UI docs].
MAX_TEXT_CHARS = 1500

# Bulk delete: {"visitors": [...]} or {"accounts": [...]} [T], at most 500 ids a call [C].
BULK_DELETE_LIST_KEYS = {"visitor": "visitors", "account": "accounts"}
BULK_DELETE_MAX = 500
