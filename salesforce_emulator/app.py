"""The Starlette application: every route module behind the gateway middleware."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from salesforce_emulator import (
    auth_routes,
    bulk2,
    collection_routes,
    metadata_routes,
    operator_routes,
    query_routes,
    sobject_routes,
)
from salesforce_emulator.context import EmulatorContext
from salesforce_emulator.errors import SalesforceError, not_found
from salesforce_emulator.gateway import Gateway
from salesforce_emulator.responses import sf_error_response


async def _salesforce_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SalesforceError)
    return sf_error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        return sf_error_response(SalesforceError(
            405, "METHOD_NOT_ALLOWED", f"HTTP Method '{request.method}' not allowed. Allowed are "
                                       f"{(exc.headers or {}).get('Allow', '')}"))
    if exc.status_code == 404:
        return sf_error_response(not_found())
    return sf_error_response(SalesforceError(exc.status_code, "UNKNOWN_EXCEPTION", str(exc.detail)))


def build_app(ctx: EmulatorContext) -> Starlette:
    """The emulator's ASGI application for ``ctx``."""
    routes = [
        *operator_routes.routes(ctx),
        *auth_routes.routes(ctx),
        # Describe routes first: /sobjects/{object}/describe would otherwise match a record route.
        *metadata_routes.routes(ctx),
        *collection_routes.routes(ctx),
        *query_routes.routes(ctx),
        *bulk2.routes(ctx),
        *sobject_routes.routes(ctx),
    ]
    app = Starlette(routes=routes, exception_handlers={
        SalesforceError: _salesforce_error,
        HTTPException: _http_error,
    })
    app.router.redirect_slashes = False
    app.add_middleware(Gateway, ctx=ctx)
    return app
