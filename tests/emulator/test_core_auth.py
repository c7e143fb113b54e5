"""Logging in to the emulator with every simple-salesforce flow, and sessions that expire."""

from __future__ import annotations

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceAuthenticationFailed, SalesforceExpiredSession

pytestmark = pytest.mark.integration


@pytest.fixture
def conn(emulator):
    emulator.reset()
    return emulator.connection


def test_soap_login_with_security_token(emulator, conn) -> None:
    sf = Salesforce(username=conn["username"], password=conn["password"], security_token=conn["security_token"],
                    domain=emulator.login_domain, session=emulator.requests_session())
    assert f"https://{sf.sf_instance}" == emulator.instance_url
    assert sf.session_id.startswith("00D")
    assert sf.describe()["maxBatchSize"] == 200


def test_soap_login_response_shape(emulator, conn) -> None:
    body = (
        '<?xml version="1.0" encoding="utf-8" ?><env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:urn="urn:partner.soap.sforce.com"><env:Body><n1:login xmlns:n1="urn:partner.soap.sforce.com">'
        f'<n1:username>{conn["username"]}</n1:username><n1:password>{conn["password"]}{conn["security_token"]}'
        "</n1:password></n1:login></env:Body></env:Envelope>"
    )
    response = emulator.requests_session().post(f"{emulator.instance_url}/services/Soap/u/59.0", data=body,
                                                headers={"content-type": "text/xml", "SOAPAction": "login"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    text = response.text
    assert "<loginResponse><result><metadataServerUrl>" in text
    assert f"<serverUrl>{emulator.instance_url}/services/Soap/u/59.0/00D" in text
    assert "<sessionSecondsValid>7200</sessionSecondsValid>" in text


def test_soap_login_fault(emulator, conn) -> None:
    with pytest.raises(SalesforceAuthenticationFailed) as failure:
        Salesforce(username=conn["username"], password="wrong", security_token=conn["security_token"],
                   domain=emulator.login_domain, session=emulator.requests_session())
    assert failure.value.code == "INVALID_LOGIN"
    assert failure.value.auth_message == "Invalid username, password, security token; or user locked out."


def test_soap_login_fault_is_a_500_login_fault(emulator) -> None:
    body = ('<env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/"><env:Body>'
            '<n1:login xmlns:n1="urn:partner.soap.sforce.com"><n1:username>nobody@example.com</n1:username>'
            "<n1:password>x</n1:password></n1:login></env:Body></env:Envelope>")
    response = emulator.requests_session().post(f"{emulator.instance_url}/services/Soap/u/59.0", data=body,
                                                headers={"content-type": "text/xml", "SOAPAction": "login"})
    assert response.status_code == 500
    assert ("<soapenv:Fault><faultcode>sf:INVALID_LOGIN</faultcode><faultstring>INVALID_LOGIN: Invalid username, "
            "password, security token; or user locked out.</faultstring><detail><sf:LoginFault "
            'xsi:type="sf:LoginFault"><sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode>') in response.text


def test_oauth_password_flow(emulator, conn) -> None:
    sf = Salesforce(username=conn["username"], password=conn["password"], consumer_key=conn["consumer_key"],
                    consumer_secret=conn["consumer_secret"], domain=emulator.login_domain,
                    session=emulator.requests_session())
    assert f"https://{sf.sf_instance}" == emulator.instance_url
    assert sf.Account.create({"Name": "OAuth"})["success"] is True


def test_oauth_token_response_shape(emulator, conn) -> None:
    response = emulator.requests_session().post(f"{emulator.instance_url}/services/oauth2/token", data={
        "grant_type": "password", "client_id": conn["consumer_key"], "client_secret": conn["consumer_secret"],
        "username": conn["username"], "password": conn["password"] + conn["security_token"]})
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["access_token", "instance_url", "id", "token_type", "issued_at", "signature"]
    assert body["instance_url"] == emulator.instance_url
    assert body["token_type"] == "Bearer"


def test_oauth_password_flow_bad_password(emulator, conn) -> None:
    with pytest.raises(SalesforceAuthenticationFailed) as failure:
        Salesforce(username=conn["username"], password="nope", consumer_key=conn["consumer_key"],
                   consumer_secret=conn["consumer_secret"], domain=emulator.login_domain,
                   session=emulator.requests_session())
    assert failure.value.code == "invalid_grant"
    assert failure.value.auth_message == "authentication failure"


def test_oauth_error_is_400_json(emulator, conn) -> None:
    response = emulator.requests_session().post(f"{emulator.instance_url}/services/oauth2/token", data={
        "grant_type": "password", "client_id": conn["consumer_key"], "client_secret": conn["consumer_secret"],
        "username": conn["username"], "password": "bad"})
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_grant", "error_description": "authentication failure"}


def test_client_credentials_flow(emulator, conn) -> None:
    sf = Salesforce(consumer_key=conn["consumer_key"], consumer_secret=conn["consumer_secret"],
                    domain=emulator.login_domain, session=emulator.requests_session())
    assert sf.Account.create({"Name": "Client credentials"})["success"] is True


def test_client_credentials_bad_secret(emulator, conn) -> None:
    with pytest.raises(SalesforceAuthenticationFailed) as failure:
        Salesforce(consumer_key=conn["consumer_key"], consumer_secret="wrong", domain=emulator.login_domain,
                   session=emulator.requests_session())
    assert failure.value.code == "invalid_client"


def test_direct_session(emulator, conn) -> None:
    sf = Salesforce(instance_url=emulator.instance_url, session_id=conn["access_token"],
                    session=emulator.requests_session())
    assert sf.Account.create({"Name": "Direct"})["success"] is True


def test_invalid_session_is_401_with_real_body(emulator, conn) -> None:
    sf = Salesforce(instance_url=emulator.instance_url, session_id="00D000000000000!bogus",
                    session=emulator.requests_session())
    with pytest.raises(SalesforceExpiredSession) as failure:
        sf.Account.create({"Name": "x"})
    assert failure.value.status == 401
    assert failure.value.content == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    raw = emulator.requests_session().get(f"{emulator.instance_url}/services/data/v59.0/limits/")
    assert raw.status_code == 401
    assert raw.headers["WWW-Authenticate"] == "Token"


@pytest.mark.parametrize("flow", ["soap", "oauth"])
def test_relogin_after_forced_expiry(emulator, conn, flow) -> None:
    session = emulator.requests_session()
    if flow == "soap":
        sf = Salesforce(username=conn["username"], password=conn["password"], security_token=conn["security_token"],
                        domain=emulator.login_domain, session=session)
    else:
        sf = Salesforce(username=conn["username"], password=conn["password"], consumer_key=conn["consumer_key"],
                        consumer_secret=conn["consumer_secret"], domain=emulator.login_domain, session=session)
    first = sf.session_id
    assert emulator.operator("sessions/expire", method="POST", json={"session_id": first}) == {"expired": 1}
    # The 401 INVALID_SESSION_ID makes simple-salesforce log in again and repeat the call.
    assert sf.Account.create({"Name": "After expiry"})["success"] is True
    assert sf.session_id != first


def test_static_token_survives_login_session_expiry(emulator, conn) -> None:
    emulator.operator("sessions/expire", method="POST", json={})
    assert emulator.salesforce().Account.create({"Name": "still valid"})["success"] is True


def test_versions_listing_needs_no_session(emulator) -> None:
    response = requests.Session()
    response.verify = emulator.ca_cert
    response.trust_env = False
    listing = response.get(f"{emulator.instance_url}/services/data/").json()
    assert {"label": "Winter '24", "url": "/services/data/v59.0", "version": "59.0"} in listing


def test_soap_login_with_organization_id(emulator, conn) -> None:
    sf = Salesforce(username=conn["username"], password=conn["password"], organizationId="00D5g000004Emu1",
                    domain=emulator.login_domain, session=emulator.requests_session())
    assert sf.Account.create({"Name": "IP restricted"})["success"] is True
    with pytest.raises(SalesforceAuthenticationFailed):
        Salesforce(username=conn["username"], password=conn["password"], organizationId="00D000000000001",
                   domain=emulator.login_domain, session=emulator.requests_session())
