"""How Passwork reaches Salesforce: one of three login flows, chosen by which environment variables are set.

Secrets only ever come from the environment; `repr()` and error messages never show them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, SecretStr

DEFAULT_API_VERSION = "62.0"

AuthFlow = Literal["direct", "password", "client_credentials"]


class SalesforceConfigError(ValueError):
    """The Salesforce connection settings are incomplete or contradictory; the message says what to set."""


class SalesforceSettings(BaseModel):
    """Connection settings, normally read from the `SALESFORCE_*` environment variables."""

    instance_url: str | None = None
    access_token: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    security_token: SecretStr | None = None
    consumer_key: str | None = None
    consumer_secret: SecretStr | None = None
    domain: str | None = None
    ca_bundle: str | None = None
    api_version: str = DEFAULT_API_VERSION

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "SalesforceSettings":
        """Read `SALESFORCE_*` variables; empty values count as unset."""
        env = os.environ if environ is None else environ
        values = {name: env.get(var) for name, var in ENV_VARIABLES.items() if env.get(var)}
        values["api_version"] = str(values.get("api_version") or DEFAULT_API_VERSION).lstrip("vV")
        return cls(**values)

    @property
    def flow(self) -> AuthFlow:
        """Which login flow these settings select (direct token, SOAP password, or client credentials)."""
        if self.instance_url and self.access_token:
            return "direct"
        if self.username and self.password:
            return "password"
        if self.consumer_key and self.consumer_secret:
            if not self.domain:
                raise SalesforceConfigError(
                    "SALESFORCE_CONSUMER_KEY and SALESFORCE_CONSUMER_SECRET are set but SALESFORCE_DOMAIN is not: "
                    "the client-credentials flow needs your org's My Domain (e.g. mycompany.my)"
                )
            return "client_credentials"
        raise SalesforceConfigError(
            "no Salesforce login is configured: set SALESFORCE_INSTANCE_URL and SALESFORCE_ACCESS_TOKEN, or "
            "SALESFORCE_USERNAME, SALESFORCE_PASSWORD and SALESFORCE_SECURITY_TOKEN, or SALESFORCE_CONSUMER_KEY, "
            "SALESFORCE_CONSUMER_SECRET and SALESFORCE_DOMAIN"
        )

    def describe_target(self) -> str:
        """A secret-free description of where these settings log in, for messages and metadata."""
        where = self.instance_url or self.domain or "login.salesforce.com"
        return f"{where} ({self.flow} login, API v{self.api_version})"


ENV_VARIABLES: dict[str, str] = {name: f"SALESFORCE_{name.upper()}" for name in SalesforceSettings.model_fields}
"""Settings field -> the environment variable it is read from (`SALESFORCE_INSTANCE_URL`, ...)."""
