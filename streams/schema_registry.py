"""Avro and Protobuf records in Confluent Schema Registry framing, read with their writer's schema.

A producer using the registry's Avro or Protobuf serializer writes a zero byte, the schema's
4-byte id, then the record in its binary encoding, which cannot be read without that schema. The
schema is fetched once per id from the registry's REST API (``GET /schemas/ids/{id}``, and
``GET /subjects/{subject}/versions/{version}`` for what a Protobuf schema imports: Confluent's,
and the compatible ones of Karapace, Redpanda and Apicurio) and kept, since an id never changes
its schema. The decoded record is made JSON-like (times as ISO-8601 text, decimals as floats) and
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
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

from fastavro import parse_schema, schemaless_reader

from adaptcast.streams.config import KafkaConfig
from adaptcast.streams.protobuf_schema import ProtobufReader, SchemaError, compile_schema
from adaptcast.streams.records import UNDECODABLE, RecordError, SchemaUnavailable

TIMEOUT_S = 5.0  # one registry request; an unreachable registry must not hold the serving thread long
FIRST_RETRY_S = 1.0  # after the registry failed to answer, ask again this long after, doubling …
RETRY_S = 30.0  # … up to this; and a schema id the registry does not have is asked for again after it


class SchemaRegistry:
    """Schemas by id from a registry at ``url`` (``auth`` ``user:password`` for HTTP basic auth,
    as Confluent Cloud's API key and secret), fetched on first use and kept.

    A record is ``undecodable`` only for what it holds: an id the registry answers it does not
    have, a schema that is neither Avro nor Protobuf, bytes that do not match. While the registry
    itself does not answer (down, overloaded, a wrong URL or credentials), records of ids not
    fetched yet raise :class:`SchemaUnavailable` instead, and the registry is asked again after a
    backoff that doubles from ``FIRST_RETRY_S`` to ``retry_s``: the worker holds such records back
    rather than dead-letter a whole outage's traffic.
    """

    def __init__(
        self,
        url: str,
        auth: str | None = None,
        timeout_s: float = TIMEOUT_S,
        retry_s: float = RETRY_S,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.url = url.rstrip("/")
        self._headers = {"Accept": "application/vnd.schemaregistry.v1+json, application/json"}
        if auth:
            self._headers["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
        self.timeout_s, self.retry_s, self.clock = timeout_s, retry_s, clock
        self._readers: dict[int, tuple[str, Callable[[bytes], Any]]] = {}  # id → its kind, and its reader
        self._refused: dict[int, tuple[float, RecordError]] = {}  # id → until when, and why it is refused
        self._down: tuple[float, float, str] | None = None  # the registry failed: until when, backoff, why

    def decode(self, schema_id: int, payload: bytes) -> Any:
        """The record ``payload`` holds, written with schema ``schema_id``, as JSON-like values."""
        reader = self._readers.get(schema_id)
        if reader is None:
            reader = self._readers[schema_id] = self._reader(schema_id)
        kind, read = reader
        try:
            return read(payload)
        except Exception as exc:  # any failure of the parser on these bytes: EOF, bad UTF-8, overflow, …
            raise RecordError(
                UNDECODABLE, f"{kind} payload does not match schema id {schema_id}: {str(exc)[:200]}"
            ) from None

    def _reader(self, schema_id: int) -> tuple[str, Callable[[bytes], Any]]:
        """:meth:`_fetch`, unless asking now is known to be futile: the id was refused less than
        ``retry_s`` ago (its error again), or the registry failed and its backoff has not passed
        (:class:`SchemaUnavailable` at once, so a registry that does not answer does not hold the
        serving thread ``timeout_s`` per record)."""
        now = self.clock()
        refused = self._refused.get(schema_id)
        if refused is not None and now < refused[0]:
            raise refused[1]
        if self._down is not None and now < self._down[0]:
            until, _, why = self._down
            raise SchemaUnavailable(why, until - now)
        try:
            reader = self._fetch(schema_id)
        except RecordError as err:
            self._refused[schema_id] = (self.clock() + self.retry_s, err)
            raise
        except SchemaUnavailable as exc:
            wait = FIRST_RETRY_S if self._down is None else 2 * self._down[1]
            wait = min(wait, self.retry_s)
            self._down = (self.clock() + wait, wait, str(exc))
            exc.retry_in_s = wait
            raise
        self._down = None
        self._refused.pop(schema_id, None)
        return reader

    def _fetch(self, schema_id: int) -> tuple[str, Callable[[bytes], Any]]:
        """The kind and reader of ``schema_id``'s records: a :class:`RecordError` if the registry
        does not have it (or what it imports) or it is neither Avro nor Protobuf,
        :class:`SchemaUnavailable` if the registry does not answer."""
        body = self._get(f"/schemas/ids/{schema_id}", f"schema id {schema_id}")
        kind = body.get("schemaType", "AVRO")
        if kind == "AVRO":
            try:
                schema = parse_schema(json.loads(body["schema"]))
            except Exception as exc:  # bad JSON, or fastavro's SchemaParseException and kin
                raise RecordError(
                    UNDECODABLE, f"schema id {schema_id} is not a valid Avro schema: {exc}"
                ) from None
            return "Avro", lambda payload: _json_like(schemaless_reader(io.BytesIO(payload), schema, None))
        if kind == "PROTOBUF":
            try:
                messages = compile_schema(body["schema"], self._imports(body, {}))
            except SchemaError as exc:
                raise RecordError(
                    UNDECODABLE, f"schema id {schema_id} is not a Protobuf schema protoc compiles: {exc}"
                ) from None
            return "Protobuf", ProtobufReader(messages)
        raise RecordError(
            UNDECODABLE,
            f"schema id {schema_id} is {kind}, and its payload is not JSON; adaptcast reads Avro, Protobuf "
            "and JSON records",
        )

    def _imports(self, body: dict[str, Any], texts: dict[str, str]) -> dict[str, str]:
        """``texts`` with the ``.proto`` text of every schema ``body`` references, by import name,
        and of what those reference in turn (each fetched once, so a cycle ends)."""
        for ref in body.get("references") or []:
            fields = ref if isinstance(ref, dict) else {}
            name, subject, version = fields.get("name"), fields.get("subject"), fields.get("version")
            if not (isinstance(name, str) and isinstance(subject, str) and isinstance(version, int)):
                raise RecordError(
                    UNDECODABLE, f"a reference without a name, subject and version: {ref!r:.200}"
                )
            if name in texts:
                continue
            what = f"reference {name!r} (subject {subject!r}, version {version})"
            found = self._get(f"/subjects/{urllib.parse.quote(subject, safe='')}/versions/{version}", what)
            texts[name] = found["schema"]
            self._imports(found, texts)
        return texts

    def _get(self, path: str, what: str) -> dict[str, Any]:
        """The registry's JSON answer at ``path`` for ``what``, a schema: a :class:`RecordError` if
        it does not have it, :class:`SchemaUnavailable` if it does not answer."""
        where = self.url + path
        request = urllib.request.Request(where, headers=self._headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as answer:
                body = json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            raise _refusal(what, where, exc) from None
        except OSError as exc:  # refused, reset, timed out, no such host
            raise SchemaUnavailable(
                f"the schema registry at {self.url} cannot be reached ({exc})", 0
            ) from None
        except ValueError:
            raise SchemaUnavailable(
                f"GET {where} answered something that is not JSON: is kafka.schema_registry_url a "
                "Schema Registry's URL?",
                0,
            ) from None
        if not isinstance(body, dict) or not isinstance(body.get("schema"), str):
            raise RecordError(UNDECODABLE, f"{what}: the registry's answer is not a schema ({where})")
        return body


def _refusal(what: str, where: str, exc: urllib.error.HTTPError) -> RecordError | SchemaUnavailable:
    """What an HTTP error answer means: the registry's own "not found" (a body with its
    ``error_code``) rejects the record; any other answer is the registry's, or its address's,
    trouble, and the record waits for it."""
    try:
        body = json.loads(exc.read())
    except (OSError, ValueError):
        body = None
    if exc.code == 404 and isinstance(body, dict) and "error_code" in body:
        return RecordError(UNDECODABLE, f"{what}: the registry does not have it ({where})")
    if exc.code in (401, 403):
        why = "check kafka.schema_registry_auth"
    elif exc.code == 404:
        why = "no registry answered there: is kafka.schema_registry_url a Schema Registry's URL?"
    else:
        why = "the registry is not serving"
    return SchemaUnavailable(f"GET {where} answered HTTP {exc.code} ({why})", 0)


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
