"""Protobuf records in Confluent Schema Registry framing, read with their writer's schema.

The registry serves a Protobuf schema as ``.proto`` text (with the texts it imports as
references), which protobuf's runtime cannot load; protoc (from grpcio-tools, run as a child
process) compiles them into descriptors once per schema id. A framed Protobuf payload starts with
the message indexes, the path from the file to the message it holds (the first top-level
message, written as one zero byte, or a count and that many indexes, each a zig-zag varint), and
the message follows. The decoded message is made JSON-like as protobuf's JSON mapping writes it,
with the ``.proto``'s own field names and every scalar field, a zero included.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import DecodeError

PROTOC_TIMEOUT_S = 30.0  # one schema's compile; it takes tens of milliseconds
MAIN = "registry_schema.proto"  # the file name the registered schema itself is compiled under


class SchemaError(ValueError):
    """A schema (or its references) that does not compile, or a payload it cannot read."""


def compile_schema(schema: str, references: Mapping[str, str]) -> tuple[Descriptor, ...]:
    """The top-level messages, in file order, of ``.proto`` text ``schema``, whose imports are the
    ``references`` (import name → text) or protobuf's well-known types. Raises
    :class:`SchemaError` with protoc's message for text that does not compile."""
    with tempfile.TemporaryDirectory(prefix="adaptcast-proto-") as tmp:
        root = Path(tmp)
        for name, text in {**references, MAIN: schema}.items():
            path = PurePosixPath(name)
            if path.is_absolute() or ".." in path.parts or not path.parts:
                raise SchemaError(f"reference name {name!r} is not a relative .proto path")
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_text(text, encoding="utf-8")
        out = root / "descriptors.pb"
        args = [sys.executable, "-m", "grpc_tools.protoc", f"-I{root}", f"--descriptor_set_out={out}"]
        try:
            done = subprocess.run(
                [*args, "--include_imports", str(root / MAIN)],
                capture_output=True,
                text=True,
                timeout=PROTOC_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise SchemaError(f"protoc did not compile it in {PROTOC_TIMEOUT_S:.0f} s") from None
        if done.returncode != 0:
            why = done.stderr.replace(str(root) + "/", "").strip() or f"protoc exited {done.returncode}"
            raise SchemaError(why[:500])
        files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:  # --include_imports lists every file after those it imports
        pool.Add(file)
    main = files.file[-1]
    prefix = f"{main.package}." if main.package else ""
    return tuple(pool.FindMessageTypeByName(prefix + m.name) for m in main.message_type)


def message_indexes(payload: bytes) -> tuple[tuple[int, ...], bytes]:
    """The message indexes at the start of a framed Protobuf ``payload``, and the message after
    them. A count of zero stands for ``(0,)``, the first top-level message."""
    count, at = _zigzag(payload, 0)
    if count == 0:
        return (0,), payload[at:]
    if not 0 < count <= 32:
        raise SchemaError(f"the message indexes' count is {count}")
    indexes = []
    for _ in range(count):
        index, at = _zigzag(payload, at)
        indexes.append(index)
    return tuple(indexes), payload[at:]


def _zigzag(data: bytes, at: int) -> tuple[int, int]:
    """The zig-zag varint at ``data[at:]`` and the offset after it."""
    value = shift = 0
    while True:
        if at >= len(data):
            raise SchemaError("the payload ends inside its message indexes")
        if shift > 63:
            raise SchemaError("a message index is not a varint")
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at, shift = at + 1, shift + 7
        if byte < 0x80:
            return (value >> 1) ^ -(value & 1), at


class ProtobufReader:
    """Reads framed payloads of one compiled schema: the message its indexes name, as JSON-like values."""

    def __init__(self, messages: tuple[Descriptor, ...]):
        self.messages = messages
        self._classes: dict[tuple[int, ...], Any] = {}

    def __call__(self, payload: bytes) -> Any:
        indexes, body = message_indexes(payload)
        cls = self._classes.get(indexes)
        if cls is None:
            cls = self._classes[indexes] = message_factory.GetMessageClass(self._descriptor(indexes))
        try:
            message = cls.FromString(body)
        except DecodeError as exc:
            raise SchemaError(f"it does not parse as {cls.DESCRIPTOR.full_name}: {exc}") from None
        return json_format.MessageToDict(
            message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
        )

    def _descriptor(self, indexes: tuple[int, ...]) -> Descriptor:
        """The message the ``indexes`` name: a top-level message, then nested ones."""
        first, *nested = indexes
        if not 0 <= first < len(self.messages):
            raise SchemaError(
                f"message index {first}: the schema has {len(self.messages)} top-level messages"
            )
        message = self.messages[first]
        for index in nested:
            if not 0 <= index < len(message.nested_types):
                count = len(message.nested_types)
                raise SchemaError(f"message index {index}: {message.full_name} has {count} nested messages")
            message = message.nested_types[index]
        return message
