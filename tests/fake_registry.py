"""A fake Confluent Schema Registry: the REST call adaptcast makes (``GET /schemas/ids/{id}``),
served from a dict on a local port. The registry is outside the system under test (no registry
can be installed here from a package index); the Avro bytes are written by fastavro as the
registry's serializer writes them: a zero byte, the schema id in 4 bytes, the binary record."""

from __future__ import annotations

import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from fastavro import parse_schema, schemaless_writer


class FakeSchemaRegistry:
    """Schemas by id (``{"schema": text}``, plus ``schemaType`` for non-Avro ones), the requests
    it was asked, and the Authorization headers it saw. Set ``failing`` to an HTTP status (and
    ``failing_body``) to have every request answered with it, as a registry in trouble, or a
    server that is not a registry, answers."""

    def __init__(self, schemas: dict[int, dict[str, Any]]):
        self.schemas = schemas
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
                schema_id = int(self.path.rsplit("/", 1)[-1]) if self.path.startswith("/schemas/ids/") else -1
                body = registry.schemas.get(schema_id)
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
