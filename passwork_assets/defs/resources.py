"""Dagster resources: the Salesforce login and the sync settings, from the same variables as the CLI.

Secrets arrive as `dg.EnvVar`s: Dagster resolves them when a run or sensor starts (not when the code location
loads) and the UI shows the variable's name, never its value. The source databases need no resource of their
own: their URLs are named in `mappings/connections.yaml` and read at run time by the connection code the
CLI uses (`ConnectionConfig.resolve_url`).
"""

from __future__ import annotations

import os

import dagster as dg
from pydantic import Field, SecretStr

from passwork_assets.salesforce.client import SalesforceClient
from passwork_assets.salesforce.settings import DEFAULT_API_VERSION, ENV_VARIABLES, SalesforceSettings
from passwork_assets.sync.settings import SyncSettings



class SalesforceResource(dg.ConfigurableResource):
    """A Salesforce login: direct token, SOAP username/password, or OAuth client credentials.

    Which flow is used follows from which fields are set, exactly as for `passwork sync`.
    """

    instance_url: str | None = None
    access_token: str | None = None
    username: str | None = None
    password: str | None = None
    security_token: str | None = None
    domain: str | None = None
    consumer_key: str | None = None
    consumer_secret: str | None = None
    ca_bundle: str | None = None
    api_version: str = DEFAULT_API_VERSION

    @classmethod
    def from_environment_variables(cls) -> "SalesforceResource":
        """One `EnvVar` per `SALESFORCE_*` variable that is set.

        Only the variables' presence is looked at here, never their values: an `EnvVar` of an unset variable
        would fail every run, and each login flow needs a different subset of them.
        """
        fields = {name: dg.EnvVar(var) for name, var in ENV_VARIABLES.items() if os.environ.get(var)}
        return cls(**fields)

    def settings(self) -> SalesforceSettings:
        """The login settings (secrets wrapped so that they never print)."""

        def secret(value: str | None) -> SecretStr | None:
            return SecretStr(value) if value else None

        return SalesforceSettings(
            instance_url=self.instance_url or None,
            access_token=secret(self.access_token),
            username=self.username or None,
            password=secret(self.password),
            security_token=secret(self.security_token),
            consumer_key=self.consumer_key or None,
            consumer_secret=secret(self.consumer_secret),
            domain=self.domain or None,
            ca_bundle=self.ca_bundle or None,
            api_version=(self.api_version or DEFAULT_API_VERSION).lstrip("vV"),
        )

    def client(self) -> SalesforceClient:
        """A new logged-in client (each run and each check gets its own, with its own API accounting)."""
        return SalesforceClient(self.settings())


class PassworkSyncResource(dg.ConfigurableResource):
    """Where the sync keeps its state, and its API budget reserve (`PASSWORK_*`, as for the CLI)."""

    state_url: str = Field(description="PostgreSQL URL of the state database (PASSWORK_STATE_URL)")
    api_reserve: int = Field(1000, description="stop before the org's daily API calls left fall below this")

    @classmethod
    def from_environment_variables(cls) -> "PassworkSyncResource":
        """`PASSWORK_STATE_URL` as an `EnvVar` (resolved when a run starts); the reserve keeps its default
        unless `PASSWORK_API_RESERVE` is set."""
        if os.environ.get("PASSWORK_API_RESERVE"):
            return cls(state_url=dg.EnvVar("PASSWORK_STATE_URL"), api_reserve=dg.EnvVar.int("PASSWORK_API_RESERVE"))
        return cls(state_url=dg.EnvVar("PASSWORK_STATE_URL"))

    def sync_settings(self) -> SyncSettings:
        """The engine's settings for one run."""
        return SyncSettings(state_url=self.state_url, api_reserve=self.api_reserve)
