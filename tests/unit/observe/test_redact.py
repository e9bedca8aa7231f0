"""target_pendo.observe.redact: the Redactor that masks secrets."""

from __future__ import annotations

from target_pendo.observe.redact import Redactor


def test_redactor_masks_only_secrets_of_four_characters_or_more() -> None:
    redact = Redactor(["abc", "supersecretkey", None, ""])
    assert redact("abc supersecretkey") == "abc ***"
    assert redact("supersecretkey") == "***"
