"""What every part of the emulator shares: the org, the configuration, faults, limits and sessions."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from salesforce_emulator import ids
from salesforce_emulator.faults import Faults
from salesforce_emulator.limits import Limits
from salesforce_emulator.org import Org
from salesforce_emulator.schema import OrgSchema, load_org_schema
from salesforce_emulator.sessions import Sessions
from salesforce_emulator.store import Store

# API versions the org answers to (Bulk 2.0 ingest exists from 41.0).
API_VERSIONS = [f"{v}.0" for v in range(41, 65)]
DEFAULT_API_VERSION = "59.0"
ORG_ID = ids.to_18("00D5g000004Emu1")
USER_ID = ids.to_18("0055g00000Emu1A")


@dataclass
class EmulatorConfig:
    """Settings of one emulator process (from the command line)."""

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8443
    org_schema: Path | None = None
    session_seconds: float = 7200.0
    api_limit: int = 15_000
    api_versions: list[str] = field(default_factory=lambda: list(API_VERSIONS))
    default_api_version: str = DEFAULT_API_VERSION
    org_id: str = ORG_ID
    user_id: str = USER_ID
    username: str = "admin@passwork.emulator"
    password: str = "emulator-password"
    security_token: str = "EMULATORTOKEN"
    consumer_key: str = "3MVG9emulator.consumer.key"
    consumer_secret: str = "EMULATORCONSUMERSECRET"
    # Set once the server is bound: the URL clients use, e.g. https://127.0.0.1:8443
    instance_url: str = ""


@dataclass
class EmulatorContext:
    """The live state handed to every route module."""

    org: Org
    config: EmulatorConfig
    faults: Faults
    limits: Limits
    sessions: Sessions
    static_token: str = ""


def create_context(config: EmulatorConfig, schema: OrgSchema | None = None) -> EmulatorContext:
    """Open (or create) the org in ``config.data_dir`` and build the shared state."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    schema = schema or load_org_schema(config.org_schema)
    faults = Faults()
    org = Org(schema, Store(config.data_dir / "org.sqlite3", schema), faults)
    sessions = Sessions(config.org_id, config.session_seconds)
    static = sessions.issue("static", lifetime_seconds=None)
    return EmulatorContext(org=org, config=config, faults=faults, limits=Limits(config.api_limit), sessions=sessions,
                           static_token=static.token)
