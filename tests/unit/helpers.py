"""Shared by tests/unit: float specials, a known epoch-ms instant, an object-sync spec."""

from __future__ import annotations

from typing import Any

from target_pendo.config import ObjectsSpec, parse_stream_spec

NAN = float("nan")
INF = float("inf")
JAN_1_2024_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z


def objects_spec(sync: str = "visitor", **raw: Any) -> ObjectsSpec:
    spec = parse_stream_spec("users", {"sync": sync, **raw})
    assert isinstance(spec, ObjectsSpec)
    return spec
