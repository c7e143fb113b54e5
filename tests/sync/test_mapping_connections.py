"""connections.yaml: environment variable names only, never values; clear errors without echoing secrets."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from passwork_assets.mapping.issues import MappingError
from passwork_assets.mapping.loader import load_mappings

PROJECT_MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"


def _with_connections(tmp_path: Path, text: str) -> Path:
    target = tmp_path / "mappings"
    shutil.copytree(PROJECT_MAPPINGS, target)
    (target / "connections.yaml").write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return target


def test_resolve_url_reads_the_named_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mdir = _with_connections(tmp_path, """
        connections:
          product: {url_env: T_PRODUCT_URL, sslmode: require, sslrootcert_env: T_CA}
          erp:
            url_env: T_ERP_URL
            statement_timeout_s: 30
            ssh: {host: bastion.local, port: 2222, user: passwork, key_file_env: T_SSH_KEY, known_hosts: /etc/ssh/kh}
        """)
    m = load_mappings(mdir)
    product, erp = m.connections["product"], m.connections["erp"]
    assert (product.name, product.sslmode, product.statement_timeout_s) == ("product", "require", 300)
    assert erp.ssh is not None and (erp.ssh.host, erp.ssh.port, erp.ssh.user) == ("bastion.local", 2222, "passwork")
    assert erp.statement_timeout_s == 30

    monkeypatch.delenv("T_PRODUCT_URL", raising=False)
    with pytest.raises(MappingError) as info:
        product.resolve_url()
    [issue] = info.value.issues
    assert issue.key == "connections.product.url_env"
    assert "environment variable T_PRODUCT_URL is not set" in issue.message
    assert issue.line == 2

    monkeypatch.setenv("T_PRODUCT_URL", "postgresql://u:secret@db/product")
    assert product.resolve_url() == "postgresql://u:secret@db/product"
    monkeypatch.setenv("T_CA", "/etc/ca.pem")
    assert product.resolve_sslrootcert() == "/etc/ca.pem"
    monkeypatch.setenv("T_SSH_KEY", "/keys/id_ed25519")
    assert erp.resolve_ssh_secret() == ("key_file", "/keys/id_ed25519")


def test_a_pasted_url_is_refused_without_being_echoed(tmp_path: Path) -> None:
    mdir = _with_connections(tmp_path, """
        connections:
          product: {url_env: "postgresql://admin:hunter2@db/product"}
          erp: {url_env: ERP_DATABASE_URL}
        """)
    with pytest.raises(MappingError) as info:
        load_mappings(mdir)
    text = str(info.value)
    assert "hunter2" not in text
    [issue] = info.value.issues
    assert issue.key == "connections.product.url_env"
    assert "NAME of an environment variable" in issue.message


def test_ssh_needs_exactly_one_credential_and_wrong_types_are_named(tmp_path: Path) -> None:
    mdir = _with_connections(tmp_path, """
        connections:
          product: {url_env: PRODUCT_DATABASE_URL, sslmode: on}
          erp:
            url_env: ERP_DATABASE_URL
            statement_timeout_s: soon
            ssh:
              host: bastion
              user: me
              key_file_env: KEY
              password_env: PASS
        """)
    with pytest.raises(MappingError) as info:
        load_mappings(mdir)
    by_key = {i.key: i for i in info.value.issues}
    assert by_key["connections.erp.ssh"].message == "set exactly one of key_file_env or password_env"
    assert by_key["connections.erp.ssh"].line == 6
    assert by_key["connections.erp.statement_timeout_s"].message == "must be a whole number"
    # YAML reads `on` as true; the answer lists the modes and does not echo the value.
    assert by_key["connections.product.sslmode"].message == (
        "must be one of: disable, allow, prefer, require, verify-ca or verify-full"
    )


def test_missing_connections_file(tmp_path: Path) -> None:
    mdir = tmp_path / "mappings"
    shutil.copytree(PROJECT_MAPPINGS, mdir)
    (mdir / "connections.yaml").unlink()
    with pytest.raises(MappingError) as info:
        load_mappings(mdir)
    assert any(i.file.endswith("connections.yaml") and "missing" in i.message for i in info.value.issues)


def test_load_connections_alone(tmp_path: Path) -> None:
    from passwork_assets.mapping.loader import load_connections

    mdir = _with_connections(tmp_path, """
        connections:
          product: {url_env: PRODUCT_DATABASE_URL}
          erp: {url_env: ERP_DATABASE_URL, bogus: 1}
        """)
    with pytest.raises(MappingError) as info:
        load_connections(mdir)
    assert [i.key for i in info.value.issues] == ["connections.erp"]
    (mdir / "connections.yaml").write_text("connections:\n  product: {url_env: PRODUCT_DATABASE_URL}\n", encoding="utf-8")
    assert list(load_connections(mdir)) == ["product"]
