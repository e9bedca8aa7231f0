"""Split retries, without HTTP: a fake Pendo that refuses any batch holding a bad item."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from target_pendo.split import Refused, send_with_splits


def fake_pendo(bad: set[int], sent: list[list[int]]):
    def send(batch: Sequence[int]) -> str | Refused:
        sent.append(list(batch))
        if any(item in bad for item in batch):
            return Refused(f"item {min(i for i in batch if i in bad)} is invalid")
        return "ok"

    return send


def test_no_bad_items_is_one_call():
    sent: list[list[int]] = []
    result = send_with_splits(list(range(500)), fake_pendo(set(), sent))
    assert result.calls == 1
    assert result.rejected == []
    assert [list(b) for b, _ in result.accepted] == [list(range(500))]


def test_empty_batch_sends_nothing():
    sent: list[list[int]] = []
    result = send_with_splits([], fake_pendo(set(), sent))
    assert (result.calls, sent) == (0, [])


def test_three_bad_of_500_within_the_bound_and_in_order():
    sent: list[list[int]] = []
    bad = {17, 250, 499}
    result = send_with_splits(list(range(500)), fake_pendo(bad, sent))
    assert sorted(item for item, _ in result.rejected) == sorted(bad)
    assert result.rejected[0] == (17, "item 17 is invalid")
    accepted = [i for batch, _ in result.accepted for i in batch]
    assert accepted == [i for i in range(500) if i not in bad]  # order kept
    assert result.calls == len(sent) <= 1 + 2 * 3 * math.ceil(math.log2(500))


def test_all_bad():
    sent: list[list[int]] = []
    result = send_with_splits([1, 2, 3], fake_pendo({1, 2, 3}, sent))
    assert sorted(i for i, _ in result.rejected) == [1, 2, 3]
    assert result.accepted == []


def test_fatal_errors_propagate():
    def send(batch: Sequence[int]) -> str:
        raise RuntimeError("auth")

    with pytest.raises(RuntimeError):
        send_with_splits([1, 2], send)


@given(
    n=st.integers(min_value=1, max_value=600),
    data=st.data(),
)
def test_property_partition_and_call_bound(n, data):
    bad = set(data.draw(st.lists(st.integers(0, n - 1), max_size=8)))
    sent: list[list[int]] = []
    result = send_with_splits(list(range(n)), fake_pendo(bad, sent))
    accepted = [i for batch, _ in result.accepted for i in batch]
    rejected = [i for i, _ in result.rejected]
    assert sorted(accepted + rejected) == list(range(n))  # nothing lost, nothing twice
    assert set(rejected) == bad
    assert not set(accepted) & bad
    k = len(bad)
    assert result.calls <= 1 + 2 * k * max(1, math.ceil(math.log2(n)))
