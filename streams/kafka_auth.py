"""Why a broker that accepts TCP connections will not serve us: a SASL listener without credentials, or
credentials it refuses.

kafka-python reports neither: it retries its bootstrap until a timeout ("Unable to bootstrap from
…") while the broker drops each connection. A refusal does not pass by waiting, so a worker or
``replay`` must stop at once with one line naming the address. :func:`check_login` asks the listener
itself over a plain socket: one SaslHandshake request (a SASL listener answers with the mechanisms
it enables, any other with an error), then, with credentials, the SaslAuthenticate exchange of
kafka-python's own PLAIN or SCRAM client, whose failure the broker explains in its response.
On a TLS listener (SSL, SASL_SSL) the same exchange runs inside a TLS connection made with the
configured CA and client certificate, whose failure says what to set: a broker certificate the CA
does not sign, a client certificate the listener requires (mutual TLS) or refuses, a listener that
does not speak TLS.
"""

from __future__ import annotations

import socket
import ssl
import struct
from typing import Any

from adaptcast.streams.config import KafkaConfig
from adaptcast.streams.kafka_io import endpoint

SASL_HANDSHAKE, SASL_AUTHENTICATE = 17, 36  # Kafka protocol api keys
_NO_ERROR, _UNSUPPORTED_MECHANISM = 0, 33
_CLIENT_ID = "adaptcast-auth-probe"
_MAX_REPLY = 1 << 20  # SASL replies are small; anything longer is another protocol


class KafkaAuthError(ValueError):
    """The broker requires or refuses our login; the one-line message names the address and what to set."""


def _string(text: str) -> bytes:
    data = text.encode()
    return struct.pack(">h", len(data)) + data


class _Exchange:
    """Kafka requests (header v1) and their responses, one at a time on a plain socket."""

    def __init__(self, sock: socket.socket):
        self.sock, self.correlation = sock, 0

    def call(self, api_key: int, body: bytes) -> bytes:
        """Send request ``api_key`` v1/v0 with ``body``; return the response after its correlation id."""
        self.correlation += 1
        version = 1 if api_key == SASL_HANDSHAKE else 0
        frame = struct.pack(">hhi", api_key, version, self.correlation) + _string(_CLIENT_ID) + body
        self.sock.sendall(struct.pack(">i", len(frame)) + frame)
        (size,) = struct.unpack(">i", self._read(4))
        if not 4 <= size <= _MAX_REPLY:  # e.g. an HTTP server's "HTTP" read as a length
            raise ValueError(f"not a Kafka response (length {size})")
        return self._read(size)[4:]

    def _read(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionResetError("the broker closed the connection")
            data += chunk
        return data


def _handshake(exchange: _Exchange, mechanism: str) -> tuple[int, list[str]]:
    """SaslHandshake v1: the error code and the mechanisms the listener enables."""
    reply = exchange.call(SASL_HANDSHAKE, _string(mechanism))
    error, count = struct.unpack_from(">hi", reply)
    at, mechanisms = 6, []
    for _ in range(max(count, 0)):
        (length,) = struct.unpack_from(">h", reply, at)
        mechanisms.append(reply[at + 2 : at + 2 + length].decode())
        at += 2 + length
    return error, mechanisms


def _authenticate(exchange: _Exchange, client: dict[str, Any]) -> str | None:
    """Run the SaslAuthenticate v0 exchange with kafka-python's mechanism; the broker's refusal, or None."""
    from kafka.net.sasl import get_sasl_mechanism

    mechanism = get_sasl_mechanism(client["sasl_mechanism"])(host=exchange.sock.getpeername()[0], **client)
    while not mechanism.is_done():
        token = mechanism.auth_bytes()
        reply = exchange.call(SASL_AUTHENTICATE, struct.pack(">i", len(token)) + token)
        error, length = struct.unpack_from(">hh", reply)
        message = reply[4 : 4 + length].decode(errors="replace") if length >= 0 else ""
        if error != _NO_ERROR:
            return message or f"error code {error}"
        at = 4 + max(length, 0)
        (size,) = struct.unpack_from(">i", reply, at)
        mechanism.receive(reply[at + 4 : at + 4 + max(size, 0)])
    return None if mechanism.is_authenticated() else "the broker did not confirm the login"


def listener_login(
    address: tuple[str, int], timeout_s: float, client: dict[str, Any], tls: ssl.SSLContext | None = None
) -> tuple[list[str] | None, str | None]:
    """What the listener at ``address`` offers (None: not SASL) and its refusal of ``client``'s login,
    over TLS made with ``tls`` where given.

    The login is tried only when ``client`` holds a SASL mechanism the listener enables. Raises
    ``ssl.SSLError`` when TLS fails, ``OSError`` or ``struct.error`` when the exchange itself fails
    (not Kafka, not ready).
    """
    mechanism = client.get("sasl_mechanism") or "PLAIN"
    with socket.create_connection(address, timeout=timeout_s) as plain:
        plain.settimeout(timeout_s)
        sock = plain if tls is None else tls.wrap_socket(plain, server_hostname=address[0])
        exchange = _Exchange(sock)
        error, offered = _handshake(exchange, mechanism)
        if error not in (_NO_ERROR, _UNSUPPORTED_MECHANISM) or not offered:
            return None, None
        if error != _NO_ERROR or "sasl_plain_username" not in client:
            return offered, None
        return offered, _authenticate(exchange, client)


def check_login(cfg: KafkaConfig, client: dict[str, Any], timeout_s: float) -> None:
    """Raise :class:`KafkaAuthError` when the broker wants a login we lack, lacks ours, or refuses it.

    Call it once a broker accepts TCP connections but serves no metadata; returns quietly when the
    cause is something else (not Kafka, or not ready yet).
    """
    servers = ",".join(client["bootstrap_servers"])
    tls = _tls_context(cfg, servers) if cfg.security_protocol in ("SSL", "SASL_SSL") else None
    try:
        offered, refusal = listener_login(endpoint(client["bootstrap_servers"][0]), timeout_s, client, tls)
    except ssl.SSLError as exc:
        _check_tls(cfg, servers, exc)
        _check_tls_spoken(cfg, servers, endpoint(client["bootstrap_servers"][0]), timeout_s)
        return
    except (OSError, ValueError, struct.error):
        _check_tls_spoken(cfg, servers, endpoint(client["bootstrap_servers"][0]), timeout_s)
        return  # not Kafka, or not ready: not a question of credentials
    _check_protocol(cfg, servers, offered)
    if refusal is not None:
        raise KafkaAuthError(
            f"authentication failed at Kafka {servers} as user {cfg.sasl_username!r} "
            f"({cfg.sasl_mechanism}): {refusal}; check kafka.sasl_username and kafka.sasl_password"
        )


def _tls_context(cfg: KafkaConfig, servers: str) -> ssl.SSLContext:
    """A TLS client context as kafka-python makes one from the configured files."""
    try:
        context = ssl.create_default_context(cafile=cfg.ssl_cafile)
        if cfg.ssl_certfile:
            context.load_cert_chain(cfg.ssl_certfile, cfg.ssl_keyfile)
    except (OSError, ValueError) as exc:  # missing files, PEM that is not a certificate or key
        raise KafkaAuthError(
            f"TLS to Kafka at {servers}: kafka.ssl_cafile, kafka.ssl_certfile or kafka.ssl_keyfile "
            f"cannot be read ({exc})"
        ) from None
    return context


def _check_tls(cfg: KafkaConfig, servers: str, exc: ssl.SSLError) -> None:
    """Raise :class:`KafkaAuthError` for a TLS failure that waiting does not mend, saying what to set."""
    reason = (getattr(exc, "reason", None) or str(exc)).upper()
    if isinstance(exc, ssl.SSLCertVerificationError) and "mismatch" in str(exc.verify_message):
        why = (
            f"its certificate does not name the address dialled ({exc.verify_message}); put a name or "
            "address the certificate holds in kafka.bootstrap_servers"
        )
    elif isinstance(exc, ssl.SSLCertVerificationError):
        why = (
            f"its certificate is not trusted ({exc.verify_message}); set kafka.ssl_cafile to the CA that "
            "signed it"
        )
    elif "CERTIFICATE_REQUIRED" in reason or (not cfg.ssl_certfile and "BAD_CERTIFICATE" in reason):
        why = (
            "the listener requires a client certificate (mutual TLS); set kafka.ssl_certfile and "
            "kafka.ssl_keyfile"
        )
    elif any(alert in reason for alert in ("UNKNOWN_CA", "BAD_CERTIFICATE", "CERTIFICATE_UNKNOWN")):
        why = (
            f"the listener refuses the client certificate in kafka.ssl_certfile ({reason.lower()}); use one "
            "signed by a CA the broker trusts"
        )
    else:
        return
    raise KafkaAuthError(f"TLS to Kafka at {servers} failed: {why}")


def _check_tls_spoken(cfg: KafkaConfig, servers: str, address: tuple[str, int], timeout_s: float) -> None:
    """Raise :class:`KafkaAuthError` when the exchange failed because the listener and the configured
    protocol disagree on TLS: a TLS listener dialled in plain text, or a plain one with TLS."""
    tls = cfg.security_protocol in ("SSL", "SASL_SSL")
    if tls and _speaks_plain_kafka(address, timeout_s):
        plain = "SASL_PLAINTEXT" if cfg.security_protocol == "SASL_SSL" else "PLAINTEXT"
        raise KafkaAuthError(
            f"Kafka at {servers} does not speak TLS on this listener but kafka.security_protocol is "
            f"{cfg.security_protocol}; set {plain}"
        )
    if not tls and _speaks_tls(address, timeout_s):
        raise KafkaAuthError(
            f"Kafka at {servers} speaks TLS on this listener but kafka.security_protocol is "
            f"{cfg.security_protocol}; set {cfg.security_protocol.replace('PLAINTEXT', 'SSL')} and "
            "kafka.ssl_cafile to the CA that signed its certificate"
        )


def _speaks_plain_kafka(address: tuple[str, int], timeout_s: float) -> bool:
    """Whether the listener at ``address`` answers a Kafka request in plain text."""
    try:
        listener_login(address, timeout_s, {})
    except (OSError, ValueError, struct.error):
        return False
    return True


def _speaks_tls(address: tuple[str, int], timeout_s: float) -> bool:
    """Whether the listener at ``address`` answers a TLS handshake (its certificate not checked)."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    try:
        with socket.create_connection(address, timeout=timeout_s) as plain:
            plain.settimeout(timeout_s)
            with context.wrap_socket(plain):
                return True
    except ssl.SSLError as exc:  # an alert (a client certificate required) is TLS too; garbage is not
        return "WRONG_VERSION_NUMBER" not in (exc.reason or "") and "alert" in str(exc).lower()
    except OSError:
        return False


def _check_protocol(cfg: KafkaConfig, servers: str, offered: list[str] | None) -> None:
    """Compare what the listener offers (None: no SASL) with the configured protocol and mechanism."""
    sasl = "SASL_SSL" if cfg.security_protocol in ("SSL", "SASL_SSL") else "SASL_PLAINTEXT"
    if offered is not None and cfg.security_protocol in ("PLAINTEXT", "SSL"):
        raise KafkaAuthError(
            f"authentication failed at Kafka {servers}: the listener requires SASL ({', '.join(offered)}) "
            f"and no credentials are configured; set kafka.security_protocol={sasl}, "
            "kafka.sasl_mechanism, kafka.sasl_username and kafka.sasl_password"
        )
    if offered is None and cfg.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        speaks = "SSL" if cfg.security_protocol == "SASL_SSL" else "PLAINTEXT or SSL"
        raise KafkaAuthError(
            f"Kafka at {servers} does not take SASL on this listener but kafka.security_protocol is "
            f"{cfg.security_protocol}; set it to what the listener speaks ({speaks})"
        )
    if offered is not None and cfg.sasl_mechanism not in offered:
        raise KafkaAuthError(
            f"authentication failed at Kafka {servers}: kafka.sasl_mechanism={cfg.sasl_mechanism} is not "
            f"enabled there; the listener offers {', '.join(offered)}"
        )
