"""An SSL client listener for the test broker: a throwaway CA and a server certificate for 127.0.0.1
(and, for mutual TLS, client certificates signed by that CA).

``openssl`` makes both in the state directory (once; reused on restart). The broker reads them as
PEM files (Kafka's ``ssl.keystore.type=PEM``), clients trust ``ca.pem`` (``ssl_cafile``) and check
that the certificate names the address they dialled.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adaptcast.deploy.kafka.errors import KafkaLauncherError, tail_text

LISTENER = "SSL"
TLS_DIR = "tls"
VALID_DAYS = 30


@dataclass(frozen=True)
class TlsFiles:
    """The CA clients trust and the server's key and certificate chain in one PEM file."""

    ca: Path
    server: Path

    def client_config(self) -> dict[str, Any]:
        """kafka-python settings that trust this CA."""
        return {"security_protocol": LISTENER, "ssl_cafile": str(self.ca)}


def make_certificates(state_dir: Path, host: str) -> TlsFiles:
    """A CA and a server certificate for ``host`` (an IP address) under ``state_dir/tls``, made once."""
    folder = state_dir / TLS_DIR
    files = TlsFiles(ca=folder / "ca.pem", server=folder / "server.pem")
    if files.ca.is_file() and files.server.is_file():
        return files
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    (folder / "san.cnf").write_text(f"subjectAltName=IP:{host}\n")
    _openssl(
        folder,
        f"req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days {VALID_DAYS}",
        "adaptcast-test-ca",
    )
    _signed(folder, "server", host, "-extfile san.cnf")
    files.server.write_text((folder / "server.key").read_text() + (folder / "server.crt").read_text())
    files.server.chmod(0o600)
    return files


def client_certificate(files: TlsFiles, name: str) -> tuple[Path, Path]:
    """A client certificate for ``name``, signed by the test CA, and its key (PEM files, made once):
    what a listener with ``ssl.client.auth=required`` (mutual TLS) asks of its clients."""
    folder = files.ca.parent
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    if not (cert.is_file() and key.is_file()):
        _signed(folder, name, name)
    return cert, key


def _signed(folder: Path, name: str, subject: str, extra: str = "") -> None:
    """``name.key`` and ``name.crt`` for ``subject``, signed by the CA in ``folder``."""
    _openssl(folder, f"req -newkey rsa:2048 -nodes -keyout {name}.key -out {name}.csr", subject)
    _openssl(
        folder,
        f"x509 -req -in {name}.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out {name}.crt "
        f"-days {VALID_DAYS} {extra}",
    )


def _openssl(folder: Path, step: str, subject: str | None = None) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise KafkaLauncherError("openssl not found: the TLS listener needs it to make a test certificate")
    args = [openssl, *step.split(), *([] if subject is None else ["-subj", f"/CN={subject}"])]
    done = subprocess.run(args, cwd=folder, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise KafkaLauncherError(f"openssl {step.split()[0]} failed:\n{tail_text(done.stderr, 10)}")


def ssl_settings(files: TlsFiles) -> dict[str, str]:
    """The broker's key and certificate, and the CA it trusts (clients' certificates, with
    ``ssl.client.auth``), for an SSL or SASL_SSL listener."""
    return {
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(files.server),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(files.ca),
    }


def listener_settings(files: TlsFiles, host: str, port: int, controller_port: int) -> dict[str, str]:
    """Settings that replace the PLAINTEXT client listener with an SSL one on the same port."""
    return {
        "listeners": f"{LISTENER}://{host}:{port},CONTROLLER://{host}:{controller_port}",
        "advertised.listeners": f"{LISTENER}://{host}:{port}",
        "inter.broker.listener.name": LISTENER,
        "listener.security.protocol.map": f"CONTROLLER:PLAINTEXT,{LISTENER}:{LISTENER}",
        **ssl_settings(files),
    }
