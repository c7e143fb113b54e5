"""Login: the SOAP partner ``login`` call and the OAuth 2.0 token endpoint (password, client credentials).

simple-salesforce posts logins to ``https://{domain}.salesforce.com/...``. With
``domain="127.0.0.1:PORT/login?"`` that URL becomes ``https://127.0.0.1:PORT/login?.salesforce.com/services/...``:
the host is the emulator, the path is ``/login`` and the real login path lands in the query string, which
``/login`` reads to choose the flow (falling back to the SOAPAction header and the content type).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from urllib.parse import parse_qs
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from salesforce_emulator.context import EmulatorContext

LOGIN_PATH = "/login"
_SOAP_VERSION = re.compile(r"Soap/[uc]/(\d+\.\d+)")
_XML_TYPE = "text/xml;charset=UTF-8"
_INVALID_LOGIN = "Invalid username, password, security token; or user locked out."


def login_domain(host: str, port: int) -> str:
    """The ``domain=`` value that points simple-salesforce's login flows at the emulator on host:port."""
    return f"{host}:{port}{LOGIN_PATH}?"


def _soap_fault(code: str, message: str) -> Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"'
        ' xmlns:sf="urn:fault.partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        f"<soapenv:Body><soapenv:Fault><faultcode>sf:{code}</faultcode><faultstring>{code}: {escape(message)}</faultstring>"
        f'<detail><sf:LoginFault xsi:type="sf:LoginFault"><sf:exceptionCode>{code}</sf:exceptionCode>'
        f"<sf:exceptionMessage>{escape(message)}</sf:exceptionMessage></sf:LoginFault></detail></soapenv:Fault>"
        "</soapenv:Body></soapenv:Envelope>"
    )
    return Response(body, status_code=500, media_type=_XML_TYPE)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _credentials_ok(ctx: EmulatorContext, username: str, password: str) -> bool:
    cfg = ctx.config
    if not hmac.compare_digest(username.lower(), cfg.username.lower()):
        return False
    # Loopback is a trusted IP range, so the password alone is accepted as well as password + token.
    return hmac.compare_digest(password, cfg.password + cfg.security_token) or hmac.compare_digest(password, cfg.password)


def _soap_login(ctx: EmulatorContext, body: bytes, version: str) -> Response:
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return _soap_fault("INVALID_LOGIN", _INVALID_LOGIN)
    found = {_local(el.tag): (el.text or "") for el in root.iter()}
    if "login" not in found:
        return _soap_fault("UNKNOWN_EXCEPTION", "The only SOAP call this org answers is login")
    if "organizationId" in found and found["organizationId"][:15] != ctx.config.org_id[:15]:
        return _soap_fault("INVALID_LOGIN", _INVALID_LOGIN)
    if not _credentials_ok(ctx, found.get("username", ""), found.get("password", "")):
        return _soap_fault("INVALID_LOGIN", _INVALID_LOGIN)
    cfg = ctx.config
    session = ctx.sessions.issue("soap")
    org15 = cfg.org_id[:15]
    base = cfg.instance_url
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"'
        ' xmlns="urn:partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        "<soapenv:Body><loginResponse><result>"
        f"<metadataServerUrl>{base}/services/Soap/m/{version}/{org15}</metadataServerUrl>"
        "<passwordExpired>false</passwordExpired><sandbox>false</sandbox>"
        f"<serverUrl>{base}/services/Soap/u/{version}/{org15}</serverUrl>"
        f"<sessionId>{escape(session.token)}</sessionId><userId>{cfg.user_id}</userId>"
        "<userInfo><accessibilityMode>false</accessibilityMode><chatterExternal>false</chatterExternal>"
        "<currencySymbol>¥</currencySymbol><orgAttachmentFileSizeLimit>5242880</orgAttachmentFileSizeLimit>"
        "<orgDefaultCurrencyIsoCode>JPY</orgDefaultCurrencyIsoCode><orgDefaultCurrencyLocale>ja_JP</orgDefaultCurrencyLocale>"
        "<orgDisallowHtmlAttachments>false</orgDisallowHtmlAttachments><orgHasPersonAccounts>false</orgHasPersonAccounts>"
        f"<organizationId>{cfg.org_id}</organizationId><organizationMultiCurrency>false</organizationMultiCurrency>"
        "<organizationName>Passwork Emulator</organizationName><profileId>00e5g000000EmuLAAS</profileId>"
        "<roleId xsi:nil=\"true\"/>"
        f"<sessionSecondsValid>{int(cfg.session_seconds)}</sessionSecondsValid>"
        f"<userDefaultCurrencyIsoCode xsi:nil=\"true\"/><userEmail>{escape(cfg.username)}</userEmail>"
        f"<userFullName>Emulator Admin</userFullName><userId>{cfg.user_id}</userId><userLanguage>ja</userLanguage>"
        f"<userLocale>ja_JP</userLocale><userName>{escape(cfg.username)}</userName>"
        "<userTimeZone>Asia/Tokyo</userTimeZone><userType>Standard</userType><userUiSkin>Theme3</userUiSkin>"
        "</userInfo></result></loginResponse></soapenv:Body></soapenv:Envelope>"
    )
    return Response(xml, status_code=200, media_type=_XML_TYPE)


def _oauth_error(error: str, description: str, status: int = 400) -> Response:
    return JSONResponse({"error": error, "error_description": description}, status_code=status,
                        media_type="application/json;charset=UTF-8")


def _token_response(ctx: EmulatorContext) -> Response:
    cfg = ctx.config
    session = ctx.sessions.issue("oauth")
    issued_at = str(int(time.time() * 1000))
    identity = f"{cfg.instance_url}/id/{cfg.org_id}/{cfg.user_id}"
    signature = base64.b64encode(
        hmac.new(cfg.consumer_secret.encode(), (identity + issued_at).encode(), hashlib.sha256).digest()
    ).decode()
    return JSONResponse({
        "access_token": session.token,
        "instance_url": cfg.instance_url,
        "id": identity,
        "token_type": "Bearer",
        "issued_at": issued_at,
        "signature": signature,
    }, media_type="application/json;charset=UTF-8")


def _oauth_token(ctx: EmulatorContext, request: Request, body: bytes) -> Response:
    cfg = ctx.config
    form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}
    grant = form.get("grant_type", "")
    client_id, client_secret = form.get("client_id"), form.get("client_secret")
    basic = request.headers.get("authorization", "")
    if basic.lower().startswith("basic "):
        try:
            client_id, _, client_secret = base64.b64decode(basic[6:]).decode().partition(":")
        except ValueError:
            return _oauth_error("invalid_client", "invalid client credentials")
    if grant not in {"password", "client_credentials"}:
        return _oauth_error("unsupported_grant_type", "grant type not supported")
    if client_id != cfg.consumer_key:
        return _oauth_error("invalid_client_id", "client identifier invalid")
    if client_secret != cfg.consumer_secret:
        return _oauth_error("invalid_client", "invalid client credentials")
    if grant == "password" and not _credentials_ok(ctx, form.get("username", ""), form.get("password", "")):
        return _oauth_error("invalid_grant", "authentication failure")
    return _token_response(ctx)


def routes(ctx: EmulatorContext) -> list[BaseRoute]:
    """The login routes: real paths, plus ``/login`` for simple-salesforce's ``domain=`` URLs."""

    async def soap(request: Request) -> Response:
        return _soap_login(ctx, await request.body(), request.path_params["version"])

    async def token(request: Request) -> Response:
        return _oauth_token(ctx, request, await request.body())

    async def login(request: Request) -> Response:
        body = await request.body()
        suffix = request.url.query
        if "oauth2/token" in suffix:
            return _oauth_token(ctx, request, body)
        version = _SOAP_VERSION.search(suffix)
        content_type = request.headers.get("content-type", "")
        if version or request.headers.get("soapaction") or "xml" in content_type:
            return _soap_login(ctx, body, version.group(1) if version else ctx.config.default_api_version)
        return _oauth_token(ctx, request, body)

    return [
        Route("/services/Soap/u/{version}", soap, methods=["POST"]),
        Route("/services/oauth2/token", token, methods=["POST"]),
        Route(LOGIN_PATH, login, methods=["POST"]),
    ]
