"""A fake Confluent Schema Registry: the REST calls adaptcast makes (``GET /schemas/ids/{id}``, and
``GET /subjects/{subject}/versions/{version}`` for a Protobuf schema's references), served from
dicts on a local port. The registry is outside the system under test (no registry can be
installed here from a package index); the Avro bytes are written by fastavro as the registry's
serializer writes them: a zero byte, the schema id in 4 bytes, the binary record (for Protobuf,
the message indexes, then the message)."""

from __future__ import annotations

import io
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from fastavro import parse_schema, schemaless_writer


class FakeSchemaRegistry:
    """Schemas by id (``{"schema": text}``, plus ``schemaType`` for non-Avro ones) and by
    (subject, version), the requests it was asked, and the Authorization headers it saw. Set
    ``failing`` to an HTTP status (and ``failing_body``) to have every request answered with it,
    as a registry in trouble, or a server that is not a registry, answers."""

    def __init__(
        self,
        schemas: dict[int, dict[str, Any]],
        subjects: dict[tuple[str, int], dict[str, Any]] | None = None,
    ):
        self.schemas = schemas
        self.subjects = subjects or {}
        self.requests: list[str] = []
        self.auth: list[str | None] = []
        self.failing: int | None = None
        self.failing_body = b""
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                registry.requests.append(self.path)
                registry.auth.append(self.headers.get("Authorization"))
                if registry.failing is not None:
                    self.send_response(registry.failing)
                    self.end_headers()
                    self.wfile.write(registry.failing_body)
                    return
                body = registry.lookup(self.path)
                if body is None:
                    self.send_response(404)
                    self.end_headers()
                    self.wfile.write(b'{"error_code": 40403, "message": "Schema not found"}')
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
                self.end_headers()
                self.wfile.write(json.dumps(body).encode())

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def lookup(self, path: str) -> dict[str, Any] | None:
        """The schema at a request's ``path``, or None."""
        parts = path.split("/")
        if path.startswith("/schemas/ids/") and parts[-1].isdigit():
            return self.schemas.get(int(parts[-1]))
        if len(parts) == 5 and parts[1] == "subjects" and parts[3] == "versions" and parts[4].isdigit():
            return self.subjects.get((urllib.parse.unquote(parts[2]), int(parts[4])))
        return None

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def avro_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A registry's answer for an Avro schema."""
    return {"schema": json.dumps(schema)}


def framed(schema_id: int, schema: dict[str, Any], record: dict[str, Any]) -> bytes:
    """``record`` as the registry's Avro serializer writes it."""
    out = io.BytesIO()
    schemaless_writer(out, parse_schema(schema), record)
    return b"\x00" + schema_id.to_bytes(4, "big") + out.getvalue()


def protobuf_schema(text: str, references: dict[str, tuple[str, int]] | None = None) -> dict[str, Any]:
    """A registry's answer for a Protobuf schema importing ``references`` (name → subject, version)."""
    refs = [{"name": n, "subject": s, "version": v} for n, (s, v) in (references or {}).items()]
    return {"schemaType": "PROTOBUF", "schema": text, "references": refs}


def framed_protobuf(schema_id: int, indexes: list[int], message: bytes) -> bytes:
    """A serialized Protobuf ``message`` as the registry's serializer frames it: the message
    indexes as zig-zag varints, a count and the path, ``[0]`` written as a single zero byte."""
    ints = [] if indexes == [0] else [len(indexes), *indexes]
    return b"\x00" + schema_id.to_bytes(4, "big") + b"".join(_varint(2 * i) for i in ints or [0]) + message


def _varint(value: int) -> bytes:
    """``value`` ≥ 0 in base-128, low group first."""
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)
