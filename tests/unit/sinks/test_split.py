"""Sending metadata rows in calls Pendo takes, without HTTP: fake Pendos that refuse a call
holding a bad row (400), fail rows without saying which (untied counts), or time out on calls
over a budget (408), and the guarantees `send_batches` keeps under each."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from target_pendo.pendo.answers import MetadataAnswer, Verdict, reconcile
from target_pendo.sinks.split import CallSize, Refused, TooBig, send_batches


def key(item: int) -> str:
    return str(item)


def refusing_pendo(bad: set[int], sent: list[list[int]], budget: int | None = None):
    """Refuses a whole call holding a bad row; answers TooBig past `budget` rows."""

    def send(batch: Sequence[int]) -> Verdict | Refused | TooBig:
        sent.append(list(batch))
        if budget is not None and len(batch) > budget:
            return TooBig("HTTP 408")
        if any(item in bad for item in batch):
            return Refused(f"item {min(i for i in batch if i in bad)} is invalid")
        every_row_updated = MetadataAnswer(len(batch), len(batch), 0, frozenset(), ())
        return reconcile(every_row_updated, [key(i) for i in batch])

    return send


def untied_pendo(bad: set[int], sent: list[list[int]]):
    """Answers 200 counting bad rows as failed, with `errors` absent: only the counts tell."""

    def send(batch: Sequence[int]) -> Verdict:
        sent.append(list(batch))
        failed = sum(1 for i in batch if i in bad)
        answer = MetadataAnswer(len(batch), len(batch) - failed, failed, frozenset(), ())
        return reconcile(answer, [key(i) for i in batch])

    return send


def test_no_bad_items_is_one_call():
    sent: list[list[int]] = []
    result = send_batches(list(range(500)), refusing_pendo(set(), sent), key, CallSize(500))
    assert result.calls == 1
    assert result.refused == result.failed == []
    assert result.confirmed == list(range(500))


def test_empty_batch_sends_nothing():
    sent: list[list[int]] = []
    result = send_batches([], refusing_pendo(set(), sent), key, CallSize(500))
    assert (result.calls, sent) == (0, [])


def test_three_bad_of_500_within_the_bound_and_in_order():
    sent: list[list[int]] = []
    bad = {17, 250, 499}
    result = send_batches(list(range(500)), refusing_pendo(bad, sent), key, CallSize(500))
    assert sorted(item for item, _ in result.refused) == sorted(bad)
    assert result.refused[0] == (17, "item 17 is invalid")
    assert result.confirmed == [i for i in range(500) if i not in bad]  # order kept
    assert result.calls == len(sent) <= 1 + 2 * 3 * math.ceil(math.log2(500))


def test_three_untied_failures_of_300_are_found_within_the_bound():
    sent: list[list[int]] = []
    bad = {3, 150, 299}
    result = send_batches(list(range(300)), untied_pendo(bad, sent), key, CallSize(500))
    assert sorted(item for item, _ in result.failed) == sorted(bad)
    assert "counted this row as failed" in result.failed[0][1]
    assert result.confirmed == [i for i in range(300) if i not in bad]
    assert result.calls <= 1 + 2 * 3 * math.ceil(math.log2(300))


def test_a_call_over_the_budget_is_halved_and_the_smaller_size_kept():
    sent: list[list[int]] = []
    size = CallSize(500)
    result = send_batches(list(range(1000)), refusing_pendo(set(), sent, budget=100), key, size)
    assert result.confirmed == list(range(1000))
    assert size.value <= 100
    assert max(len(b) for b in sent[-5:]) <= 100  # the rest went at the smaller size
    # 500 -> 250 -> 125 -> 63: three too-big calls, then each half of 500 rows in 8 calls
    assert result.halvings == 3
    assert result.calls == 3 + 2 * math.ceil(500 / 63)


def test_all_bad():
    sent: list[list[int]] = []
    result = send_batches([1, 2, 3], refusing_pendo({1, 2, 3}, sent), key, CallSize(500))
    assert sorted(i for i, _ in result.refused) == [1, 2, 3]
    assert result.confirmed == []


def test_fatal_errors_propagate():
    def send(batch: Sequence[int]) -> Verdict:
        raise RuntimeError("auth")

    with pytest.raises(RuntimeError):
        send_batches([1, 2], send, key, CallSize(10))


def test_on_refused_may_stop_the_splitting():
    sent: list[list[int]] = []

    def on_refused(refusal: Refused) -> None:
        raise LookupError(refusal.reason)

    with pytest.raises(LookupError, match="item 5"):
        send_batches(
            list(range(200)), refusing_pendo({5}, sent), key, CallSize(500), on_refused=on_refused
        )
    assert len(sent) == 1


def test_checkpoint_runs_before_every_call():
    sent: list[list[int]] = []
    calls = []

    def checkpoint() -> None:
        calls.append(1)
        if len(calls) > 2:
            raise InterruptedError("stop")

    with pytest.raises(InterruptedError):
        send_batches(
            list(range(100)), refusing_pendo({1}, sent), key, CallSize(500), checkpoint=checkpoint
        )
    assert len(sent) == 2


def test_call_size_only_shrinks():
    size = CallSize(500)
    size.halve_below(300)
    assert size.value == 150
    size.halve_below(1000)
    assert size.value == 150
    size.halve_below(5)
    assert size.value == 3
    size.halve_below(1)
    assert size.value == 1


@given(
    n=st.integers(min_value=1, max_value=600),
    mode=st.sampled_from(["refused", "untied"]),
    data=st.data(),
)
def test_property_partition_and_call_bound(n, mode, data):
    bad = set(data.draw(st.lists(st.integers(0, n - 1), max_size=8)))
    sent: list[list[int]] = []
    pendo = refusing_pendo(bad, sent) if mode == "refused" else untied_pendo(bad, sent)
    result = send_batches(list(range(n)), pendo, key, CallSize(n))
    failed = [i for i, _ in result.refused + result.failed]
    assert sorted(result.confirmed + failed) == list(range(n))  # nothing lost, nothing twice
    assert set(failed) == bad
    k = len(bad)
    assert result.calls <= 1 + 2 * k * max(1, math.ceil(math.log2(n)))
