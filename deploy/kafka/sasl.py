"""A SASL_PLAINTEXT client listener for the test broker: PLAIN or SCRAM accounts, set up offline.

PLAIN accounts live in the listener's JAAS line (rewritten on every start); SCRAM credentials are
written into the metadata log by ``StorageTool format --add-scram``, so they are fixed when a state
directory is first formatted. The broker authenticates to itself as :data:`BROKER_USER`, whose
password is made once per state directory and kept there (mode 0600).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adaptcast.deploy.kafka.errors import KafkaLauncherError

MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
LISTENER = "SASL_PLAINTEXT"
BROKER_USER = "broker"
BROKER_SECRET_FILE = "broker-sasl.secret"
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")  # a JAAS option key (user_NAME) and a SCRAM name alike
_PASSWORD = re.compile(r"[A-Za-z0-9_.~+-]+")  # nothing a JAAS string or an --add-scram list must escape

_LOGIN_MODULES = {
    "PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
    "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule",
}


@dataclass(frozen=True)
class SaslSetup:
    """The mechanism the client listener requires and the client accounts (name → password) it accepts."""

    mechanism: str
    users: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.mechanism not in MECHANISMS:
            raise KafkaLauncherError(
                f"SASL mechanism {self.mechanism!r} is not one the test broker sets up; "
                f"choose one of {', '.join(MECHANISMS)}"
            )
        if not self.users:
            raise KafkaLauncherError("a SASL listener needs at least one user (NAME:PASSWORD)")
        for name, password in self.users.items():
            if not _NAME.fullmatch(name) or name == BROKER_USER:
                raise KafkaLauncherError(
                    f"SASL user name {name!r}: use a letter then letters, digits or _ "
                    f"(and not {BROKER_USER!r}, the broker's own account)"
                )
            if not _PASSWORD.fullmatch(password):
                raise KafkaLauncherError(
                    f"password of SASL user {name!r}: use letters, digits and . _ ~ + - only"
                )

    @property
    def is_scram(self) -> bool:
        return self.mechanism.startswith("SCRAM-")

    def client_config(self, user: str, password: str, protocol: str = LISTENER) -> dict[str, Any]:
        """kafka-python settings that log in as ``user`` (the broker's own account included) over
        ``protocol`` (SASL_SSL: TLS too)."""
        return {
            "security_protocol": protocol,
            "sasl_mechanism": self.mechanism,
            "sasl_plain_username": user,
            "sasl_plain_password": password,
        }


def parse_user(text: str) -> tuple[str, str]:
    """``NAME:PASSWORD`` as given on the command line."""
    name, sep, password = text.partition(":")
    if not sep or not name or not password:
        raise KafkaLauncherError(f"--sasl-user {text.split(':', 1)[0]}:…: expected NAME:PASSWORD")
    return name, password


def broker_password(state_dir: Path) -> str:
    """The broker's own password for this state directory, made on first use and kept in a 0600 file."""
    path = state_dir / BROKER_SECRET_FILE
    if path.is_file():
        return path.read_text().strip()
    password = secrets.token_urlsafe(18)
    path.touch(mode=0o600)
    path.write_text(password + "\n")
    return password


def listener_settings(
    setup: SaslSetup, host: str, port: int, controller_port: int, broker_secret: str, protocol: str = LISTENER
) -> dict[str, str]:
    """Settings that replace the PLAINTEXT client listener with a SASL one on the same port:
    ``protocol`` SASL_PLAINTEXT, or SASL_SSL (with the TLS settings of deploy/kafka/tls.py)."""
    mech = setup.mechanism
    module = _LOGIN_MODULES[mech]
    jaas = f'{module} required username="{BROKER_USER}" password="{broker_secret}"'
    if mech == "PLAIN":
        accounts = {BROKER_USER: broker_secret, **setup.users}
        jaas += "".join(f' user_{name}="{password}"' for name, password in accounts.items())
    return {
        "listeners": f"{protocol}://{host}:{port},CONTROLLER://{host}:{controller_port}",
        "advertised.listeners": f"{protocol}://{host}:{port}",
        "inter.broker.listener.name": protocol,
        "listener.security.protocol.map": f"CONTROLLER:PLAINTEXT,{protocol}:{protocol}",
        "sasl.enabled.mechanisms": mech,
        "sasl.mechanism.inter.broker.protocol": mech,
        f"listener.name.{protocol.lower()}.{mech.lower()}.sasl.jaas.config": jaas + ";",
    }


def scram_format_args(setup: SaslSetup, broker_secret: str) -> list[str]:
    """``--add-scram`` arguments of ``StorageTool format`` for every account (none for PLAIN)."""
    if not setup.is_scram:
        return []
    accounts = {BROKER_USER: broker_secret, **setup.users}
    args: list[str] = []
    for name, password in accounts.items():
        args += ["--add-scram", f"{setup.mechanism}=[name={name},password={password}]"]
    return args
