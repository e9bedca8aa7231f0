"""target_pendo.pendo.answers: MetadataAnswer.parse and reconcile (Pendo's metadata answers)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from target_pendo.observe.redact import Redactor
from target_pendo.pendo.answers import MetadataAnswer, Verdict, reconcile

# --- MetadataAnswer.parse and reconcile ---------------------------------------------------------


def parse(body: bytes, secrets: tuple[str, ...] = ()) -> MetadataAnswer | None:
    return MetadataAnswer.parse(body, Redactor(secrets))


def verdict(body: bytes, ids: list[str]) -> Verdict:
    answer = parse(body)
    assert answer is not None
    return reconcile(answer, ids)


def test_answer_with_missing_ids() -> None:
    answer = parse(b'{"total":2,"updated":1,"failed":1,"missing":["u-43"]}')
    assert answer == MetadataAnswer(2, 1, 1, frozenset({"u-43"}), ())
    assert verdict(b'{"total":2,"updated":1,"failed":1,"missing":["u-43"]}', ["u-42", "u-43"]) == (
        Verdict(confirmed=frozenset({"u-42"}), missing=frozenset({"u-43"}))
    )


def test_answer_missing_ids_become_text() -> None:
    answer = parse(b'{"updated":0,"missing":[42,"a-1"]}')
    assert answer is not None
    assert answer.missing == frozenset({"42", "a-1"})


def test_errors_as_dicts_are_tied_to_their_ids() -> None:
    body = (
        b'{"total":4,"updated":1,"failed":3,"errors":['
        b'{"id":"u-1","error":"field plan: not a string"},'
        b'{"visitorId":"u-2","message":"bad value"},'
        b'{"accountId":77,"error":"nope"}]}'
    )
    result = verdict(body, ["u-1", "u-2", "77", "u-4"])
    assert result.failed == {"u-1": "field plan: not a string", "u-2": "bad value", "77": "nope"}
    assert result.confirmed == frozenset({"u-4"})
    assert result.unresolved == ()


def test_errors_as_strings_with_the_id_are_tied() -> None:
    body = (
        b'{"total":3,"updated":2,"failed":1,"errors":["u-44: value for plantier is not a number"]}'
    )
    result = verdict(body, ["u-4", "u-44", "u-444"])
    assert result.failed == {"u-44": "u-44: value for plantier is not a number"}
    assert result.confirmed == frozenset({"u-4", "u-444"})


def test_an_id_inside_an_error_text_is_matched_as_a_whole_token() -> None:
    body = b'{"updated":2,"failed":1,"errors":["value for plan of visitor u-44 is too long"]}'
    result = verdict(body, ["u-4", "u-44", "u-444"])
    assert result.failed == {"u-44": "value for plan of visitor u-44 is too long"}


def test_untied_failures_leave_the_other_rows_unresolved() -> None:
    body = b'{"total":5,"updated":3,"failed":2,"errors":["boom","boom again"]}'
    result = verdict(body, ["a", "b", "c", "d", "e"])
    assert result.confirmed == frozenset()
    assert result.unresolved == ("a", "b", "c", "d", "e")
    assert result.untied == 2
    assert "boom" in result.untied_reason


def test_errors_absent_so_only_the_counts_tell() -> None:
    result = verdict(b'{"total":4,"updated":3,"failed":1,"missing":[]}', ["a", "b", "c", "d"])
    assert result.unresolved == ("a", "b", "c", "d")
    assert result.untied == 1
    assert "gave no reason" in result.untied_reason


def test_failed_beyond_missing_and_errors_is_untied() -> None:
    body = b'{"total":4,"updated":1,"failed":3,"missing":["a"],"errors":[{"id":"b","error":"x"}]}'
    result = verdict(body, ["a", "b", "c", "d"])
    assert result.missing == frozenset({"a"})
    assert result.failed == {"b": "x"}
    assert result.unresolved == ("c", "d")
    assert result.untied == 1


def test_when_every_unnamed_row_failed_no_bisecting_is_needed() -> None:
    result = verdict(b'{"total":3,"updated":0,"failed":3}', ["a", "b", "c"])
    assert result.unresolved == ()
    assert set(result.failed) == {"a", "b", "c"}


def test_updated_short_of_the_rows_is_untied_even_without_failed() -> None:
    result = verdict(b'{"updated":2}', ["a", "b", "c"])
    assert result.unresolved == ("a", "b", "c")
    assert result.untied == 1


def test_counts_that_explain_everything_confirm_the_rest() -> None:
    body = b'{"total":3,"updated":1,"failed":2,"missing":["a"],"errors":["b: no"]}'
    result = verdict(body, ["a", "b", "c"])
    assert result == Verdict(
        confirmed=frozenset({"c"}), missing=frozenset({"a"}), failed={"b": "b: no"}
    )


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"",
        b"<html>proxy says hello</html>",
        b"[1, 2]",
        b'"ok"',
        b"null",
        b"{}",
        b'{"total":3}',
        b'{"updated":null,"failed":null,"missing":[]}',
        b'{"updated":"n/a"}',
        b"[" * 10_000,
    ],
)
def test_a_body_that_is_not_pendos_answer_confirms_nothing(body: bytes) -> None:
    assert parse(body) is None


def test_answer_redacts_secrets_in_error_texts() -> None:
    body = (
        b'{"updated":0,"errors":['
        b'{"id":"u-1","error":"key supersecretkey rejected"},'
        b'"bad key supersecretkey, twice supersecretkey",'
        b'{"error":"no id, supersecretkey"},'
        b'{"id":"u-2","detail":"supersecretkey"}]}'
    )
    answer = parse(body, ("supersecretkey",))
    assert answer is not None
    assert "supersecretkey" not in repr(answer)
    assert ("u-1", "key *** rejected") in answer.errors


@pytest.mark.parametrize(("updated", "expected"), [(b"3", 3), (b'"3"', 3), (b"0", 0)])
def test_answer_updated_count(updated: bytes, expected: int) -> None:
    answer = parse(b'{"updated":' + updated + b"}")
    assert answer is not None
    assert answer.updated == expected
    assert type(answer.updated) is int


@given(
    n=st.integers(1, 40),
    data=st.data(),
)
def test_property_reconcile_never_confirms_a_failed_row(n: int, data: st.DataObject) -> None:
    ids = [f"id-{i}" for i in range(n)]
    failed = set(data.draw(st.lists(st.sampled_from(ids), unique=True)))
    missing = set(data.draw(st.lists(st.sampled_from(ids), unique=True))) - failed
    shown = set(data.draw(st.lists(st.sampled_from(sorted(failed) or ["-"]), unique=True)))
    shape = data.draw(st.sampled_from(["dict", "string", "anonymous", "absent"]))
    errors: list[object] = []
    for i in sorted(failed):
        if shape == "dict":
            errors.append({"visitorId": i, "error": "bad"} if i in shown else {"error": "bad"})
        elif shape == "string":
            errors.append(f"{i}: bad" if i in shown else "bad")
        elif shape == "anonymous":
            errors.append("bad")
    body = {
        "total": n,
        "updated": n - len(failed) - len(missing),
        "failed": len(failed) + len(missing),
        "missing": sorted(missing),
    }
    if shape != "absent":
        body["errors"] = errors
    result = verdict(json.dumps(body).encode(), ids)
    assert not result.confirmed & (failed | missing)
    assert result.missing == missing
    assert set(result.failed) <= failed
    assert failed <= set(result.failed) | set(result.unresolved)
    every = result.confirmed | result.missing | set(result.failed) | set(result.unresolved)
    assert every == set(ids)
