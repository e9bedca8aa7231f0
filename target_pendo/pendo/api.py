"""Pendo's API as our contract states it: its routes, body keys and limits, each written once."""

TRACK_PATH = "/data/track"
VERIFY_PATH = "/api/v1/token/verify"
SCHEMA_PATH = "/api/v1/metadata/schema/{kind}"
CREATE_FIELDS_PATH = "/api/v1/metadata/schema/{kind}/{group}"
METADATA_PATH = "/api/v1/metadata/{kind}/{group}/value"
BULK_DELETE_PATH = "/api/v1/bulkdelete/{kind}"
KEY_HEADER = "x-pendo-integration-key"  # the integration key; Track takes the secret in it too

WRITABLE_GROUPS = ("agent", "custom")  # metadata groups a write may set
# The id key of a metadata item, per kind (a parent account's id is its accountId).
ID_KEYS = {"visitor": "visitorId", "account": "accountId", "parentAccount": "accountId"}
# The list key of a bulk delete body: {"visitors": [...]} or {"accounts": [...]}.
BULK_DELETE_LIST_KEYS = {"visitor": "visitors", "account": "accounts"}

MAX_TEXT_CHARS = 1500  # a text field holds under 1,500 characters
MAX_PROPERTIES_BYTES = 512  # Track `properties` over this many bytes of JSON show "too large"
MAX_EVENT_AGE_MS = 7 * 24 * 3600 * 1000  # older Track events are accepted but not processed
BULK_DELETE_MAX = 500  # ids per bulk delete call
BULK_DELETE_INTERVAL = 1.0  # seconds between bulk delete calls: about one a second
