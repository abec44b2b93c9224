"""Avro records in Confluent Schema Registry framing, read with their writer's schema.

A producer using the registry's Avro serializer writes a zero byte, the schema's 4-byte id, then
the record in Avro's binary encoding, which cannot be read without that schema. The schema is
fetched once per id from the registry's REST API (``GET /schemas/ids/{id}``: Confluent's, and
the compatible ones of Karapace, Redpanda and Apicurio) and kept, since an id never changes its
schema. The decoded record is made JSON-like (times as ISO-8601 text, decimals as floats) and
then read by the configured record format like any JSON record.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import io
import json
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

from fastavro import parse_schema, schemaless_reader

from adaptcast.streams.config import KafkaConfig
from adaptcast.streams.records import UNDECODABLE, RecordError

TIMEOUT_S = 5.0  # one registry request; an unreachable registry must not hold the serving thread long
# after a fetch failed, records of that id are rejected at once for this long, not each waited on
RETRY_S = 30.0


class SchemaRegistry:
    """Schemas by id from a registry at ``url`` (``auth`` ``user:password`` for HTTP basic auth,
    as Confluent Cloud's API key and secret), fetched on first use and kept."""

    def __init__(
        self, url: str, auth: str | None = None, timeout_s: float = TIMEOUT_S, retry_s: float = RETRY_S
    ):
        self.url = url.rstrip("/")
        self._headers = {"Accept": "application/vnd.schemaregistry.v1+json, application/json"}
        if auth:
            self._headers["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
        self.timeout_s, self.retry_s = timeout_s, retry_s
        self._schemas: dict[int, Any] = {}
        self._failed: dict[int, tuple[float, RecordError]] = {}  # id → when its fetch failed, and why

    def decode(self, schema_id: int, payload: bytes) -> Any:
        """The record ``payload`` holds, written with schema ``schema_id``, as JSON-like values."""
        schema = self._schemas.get(schema_id)
        if schema is None:
            schema = self._schemas[schema_id] = self._fetch_or_recall(schema_id)
        try:
            return _json_like(schemaless_reader(io.BytesIO(payload), schema, None))
        except Exception as exc:  # any failure of the parser on these bytes: EOF, bad UTF-8, overflow, …
            raise RecordError(
                UNDECODABLE, f"Avro payload does not match schema id {schema_id}: {str(exc)[:200]}"
            ) from None

    def _fetch_or_recall(self, schema_id: int) -> Any:
        """:meth:`_fetch`, unless a fetch of ``schema_id`` failed less than ``retry_s`` ago: then
        its error again, at once (a registry that does not answer would otherwise hold the serving
        thread ``timeout_s`` for every record of the id)."""
        failed = self._failed.get(schema_id)
        if failed is not None and time.monotonic() - failed[0] < self.retry_s:
            raise failed[1]
        try:
            schema = self._fetch(schema_id)
        except RecordError as err:
            self._failed[schema_id] = (time.monotonic(), err)
            raise
        self._failed.pop(schema_id, None)
        return schema

    def _fetch(self, schema_id: int) -> Any:
        """The parsed Avro schema of ``schema_id``; an unreachable registry or a schema that is not
        Avro is ``undecodable``."""
        where = f"{self.url}/schemas/ids/{schema_id}"
        request = urllib.request.Request(where, headers=self._headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as answer:
                body = json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            what = "is not there" if exc.code == 404 else f"answered HTTP {exc.code}"
            raise RecordError(
                UNDECODABLE, f"schema id {schema_id}: the registry at {self.url} {what}"
            ) from None
        except (OSError, ValueError) as exc:
            raise RecordError(
                UNDECODABLE, f"schema id {schema_id}: the registry at {self.url} cannot be read ({exc})"
            ) from None
        kind = body.get("schemaType", "AVRO") if isinstance(body, dict) else None
        if kind != "AVRO" or not isinstance(body.get("schema"), str):
            raise RecordError(
                UNDECODABLE,
                f"schema id {schema_id} is {kind or 'not a schema'}; adaptcast reads Avro and JSON records",
            )
        try:
            return parse_schema(json.loads(body["schema"]))
        except Exception as exc:  # bad JSON, or fastavro's SchemaParseException and kin
            raise RecordError(
                UNDECODABLE, f"schema id {schema_id} is not a valid Avro schema: {exc}"
            ) from None


def _json_like(value: Any) -> Any:
    """An Avro value as JSON would carry it: logical times as ISO-8601 text, decimals as floats,
    UUIDs as text, bytes as base64; records, maps and arrays element by element."""
    if isinstance(value, dict):
        return {k: _json_like(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_like(v) for v in value]
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value


def registry_for(kafka: KafkaConfig) -> SchemaRegistry | None:
    """The registry ``kafka.schema_registry_url`` names, or None where none is set."""
    if not kafka.schema_registry_url:
        return None
    return SchemaRegistry(kafka.schema_registry_url, kafka.schema_registry_auth)
