"""Rows of a Singer BATCH message: the SDK's batch files, JSONL plain or gzipped, one raw
record a line. Any other format is refused by name: dropping a batch would lose its rows."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator, Mapping
from typing import Any

from singer_sdk.singerlib.json import deserialize_json

from target_pendo.sdk_hooks import open_batch_file
from target_pendo.singer.reader import InputError, preview


def read_batch_files(
    stream: str, message: Mapping[str, Any], line: int
) -> Iterator[dict[str, Any]]:
    """Each record of each file of a BATCH message, in order; InputError names the file."""
    encoding, manifest = message.get("encoding"), message.get("manifest")
    where = f"input line {line}: BATCH of stream {stream!r}"
    if not isinstance(encoding, Mapping) or not isinstance(manifest, list):
        raise InputError(f"{where} needs an 'encoding' object and a 'manifest' list of files")
    file_format, compression = encoding.get("format"), encoding.get("compression")
    if file_format != "jsonl" or compression not in (None, "none", "gzip"):
        raise InputError(
            f"{where} uses format {file_format!r} with compression {compression!r}; "
            "target-pendo reads BATCH files in jsonl, plain or gzip, only: configure the tap's "
            "batch_config for jsonl, or let it send RECORD messages"
        )
    for url in manifest:
        if not isinstance(url, str):
            raise InputError(f"{where} lists {url!r} in its manifest, not a file URL")
        yield from _records(url, compression == "gzip", where)


def _records(url: str, gzipped: bool, where: str) -> Iterator[dict[str, Any]]:
    try:
        with open_batch_file(url) as raw:
            handle = gzip.GzipFile(fileobj=raw, mode="rb") if gzipped else raw
            for number, data in enumerate(handle, start=1):
                text = data.decode("utf-8", "surrogateescape")
                if not text.strip():
                    continue
                try:
                    record = deserialize_json(text)
                except (json.JSONDecodeError, RecursionError):
                    raise InputError(
                        f"{where}: line {number} of {url} is not valid JSON: {preview(text)!r}"
                    ) from None
                if not isinstance(record, dict):
                    raise InputError(
                        f"{where}: line {number} of {url} is not a record object: {preview(text)!r}"
                    )
                yield record
    except OSError as exc:
        raise InputError(f"{where}: cannot read {url}: {exc.strerror or exc}") from None
