"""A real PostgreSQL that answers but refuses the service's writes (review s16 OPS-1): a read-only
standby after a failover (`default_transaction_read_only`), a revoked INSERT. Every call is refused
503 (it cannot be recorded), and now `/readyz` says not ready, the log says why once per outage in
the driver's words with no password, and both come back when writes are taken again. Before,
`/readyz` answered 200 throughout and the log named no cause."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from flask import Flask
from sqlalchemy.engine import make_url

from service.app import create_app
from service.catalog import Catalog
from service.settings import StoreSettings
from tests.audit_support import posted_call
from tests.auth_support import SELECT_AUD, auth_app, auth_settings, bearer, ec_key, mint, trusted
from tests.postgres_support import PostgresServer
from tests.support import SELECT_URL, assert_outcome, no_client, open_settings, select_body

pytestmark = pytest.mark.integration
ROLE, PASSWORD = "idds_writer", "pw-Zq81-never-logged"
REFUSING = "database: it answers but refuses the service's writes"


@pytest.fixture
def role_url(postgres_server: PostgresServer, postgres_url: str) -> Iterator[str]:
    """A fresh database owned by a login role with a password (as the docs' deployment has), as the
    URL the service is given (the test server trusts loopback, so the password is only carried)."""
    name = make_url(postgres_url).database
    with postgres_server.admin() as admin:
        admin.execute(f"DROP ROLE IF EXISTS {ROLE}")
        admin.execute(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}'")
        admin.execute(f'ALTER DATABASE "{name}" OWNER TO {ROLE}')
    yield make_url(postgres_url).set(username=ROLE, password=PASSWORD).render_as_string(hide_password=False)
    with postgres_server.admin() as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.execute(f"DROP ROLE {ROLE}")


def database_of(app: Flask) -> object:
    return app.extensions["idds_crd"].stores.database


def superuser_in(server: PostgresServer, url: str) -> psycopg.Connection:
    return psycopg.connect(
        host="127.0.0.1", port=server.port, user="postgres", dbname=make_url(url).database, autocommit=True
    )


@contextmanager
def refusing(app: Flask, server: PostgresServer, url: str, change: str, undo: str) -> Iterator[None]:
    """`change` run as the superuser in the database of `url` while the block runs, then `undo`; the
    app's pooled connections dropped both times, as a failover or a server restart drops them."""
    with superuser_in(server, url) as admin:
        admin.execute(change)
        database_of(app).engine.dispose()  # type: ignore[attr-defined]
        try:
            yield
        finally:
            admin.execute(undo)
            database_of(app).engine.dispose()  # type: ignore[attr-defined]


def refusals_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith(REFUSING)]


@pytest.mark.parametrize(
    ("change", "undo", "said"),
    [
        (
            f"ALTER ROLE {ROLE} SET default_transaction_read_only = on",
            f"ALTER ROLE {ROLE} RESET default_transaction_read_only",
            "SQLSTATE 25006): cannot execute INSERT in a read-only transaction",
        ),
        (
            f"REVOKE INSERT ON audit_records FROM {ROLE}",
            f"GRANT INSERT ON audit_records TO {ROLE}",
            "SQLSTATE 42501): permission denied for table audit_records",
        ),
    ],
    ids=["read-only", "insert-revoked"],
)
def test_a_database_refusing_writes_is_not_ready_and_the_log_says_why_once(
    compiled_catalog: Catalog,
    postgres_server: PostgresServer,
    role_url: str,
    caplog: pytest.LogCaptureFixture,
    change: str,
    undo: str,
    said: str,
) -> None:
    app = create_app(open_settings(store=StoreSettings(url=role_url)), compiled_catalog, no_client)
    client = app.test_client()
    assert posted_call(client).status_code == 200
    assert client.get("/readyz").status_code == 200
    with caplog.at_level(logging.INFO), refusing(app, postgres_server, role_url, change, undo):
        refused = [posted_call(client) for _ in range(3)]
        readiness = [client.get("/readyz") for _ in range(2)]
    for answer in refused:
        assert_outcome(answer, 503, None)
    for answer in readiness:
        assert answer.status_code == 503
        assert "refuses writes" in answer.get_json()["issue"][0]["diagnostics"]
    [logged] = refusals_logged(caplog)  # once for the outage, not per call or per probe
    assert said in logged
    assert PASSWORD not in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO):
        # a write was refused a moment ago: not ready until one is taken (or the hold is over)
        assert client.get("/readyz").status_code == 503
        assert posted_call(client).status_code == 200
        assert client.get("/readyz").status_code == 200
    assert "database: it takes the service's writes again" in caplog.text
    assert not refusals_logged(caplog)


def test_a_read_only_database_refuses_the_jwt_claim_and_says_why(
    postgres_server: PostgresServer, role_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The reviewer's reproduction (p22): with JWTs required, the token's claim in the replay store is
    the first write refused; the 503 no longer points at the token set-up, and the log says why."""
    key = ec_key("ES384")
    app = auth_app(auth_settings(trusted(key), store_url=role_url))
    client = app.test_client()
    change = f"ALTER ROLE {ROLE} SET default_transaction_read_only = on"
    with refusing(app, postgres_server, role_url, change, f"ALTER ROLE {ROLE} RESET ALL"):
        answer = client.post(
            "/cds-services/idds-crd-order-select", json=select_body(), headers=bearer(mint(key, SELECT_AUD))
        )
        readiness = client.get("/readyz")
    issue = assert_outcome(answer, 503, None)
    assert "cannot record the token in its database" in issue["diagnostics"]
    assert readiness.status_code == 503
    [logged] = refusals_logged(caplog)
    assert "SQLSTATE 25006" in logged and "read-only transaction" in logged


@pytest.mark.parametrize("table", ["audit_feedback", "seen_tokens"])
def test_a_table_hook_calls_do_not_write_takes_no_replica_out(
    compiled_catalog: Catalog, postgres_server: PostgresServer, role_url: str, table: str
) -> None:
    """Only what a hook call writes decides readiness: a revoked INSERT on the feedback table refuses
    feedback (503), and on the replay store matters only where calls are authenticated; either way
    the replica stays ready for hook calls, which are still recorded."""
    app = create_app(open_settings(store=StoreSettings(url=role_url)), compiled_catalog, no_client)
    client = app.test_client()
    change = f"REVOKE INSERT ON {table} FROM {ROLE}"
    with refusing(app, postgres_server, role_url, change, f"GRANT INSERT ON {table} TO {ROLE}"):
        assert client.get("/readyz").status_code == 200
        assert posted_call(client).status_code == 200


def test_an_authenticating_replica_whose_replay_store_refuses_writes_is_not_ready(
    postgres_server: PostgresServer, role_url: str
) -> None:
    app = auth_app(auth_settings(trusted(ec_key("ES384")), store_url=role_url))
    client = app.test_client()
    change = f"REVOKE INSERT ON seen_tokens FROM {ROLE}"
    with refusing(app, postgres_server, role_url, change, f"GRANT INSERT ON seen_tokens TO {ROLE}"):
        readiness = client.get("/readyz")
    assert readiness.status_code == 503
    assert "refuses writes" in readiness.get_json()["issue"][0]["diagnostics"]


@pytest.mark.parametrize(("reuse", "ready"), [((True,), 200), ((True, False), 503)], ids=["reuse", "mixed"])
def test_the_replay_store_matters_only_where_some_client_claims_its_tokens(
    postgres_server: PostgresServer, role_url: str, reuse: tuple[bool, ...], ready: int
) -> None:
    """A `token_reuse` client's token is never claimed (service/auth/verify.py), so where it is the only
    one, a replay store refusing writes keeps no hook call from being answered and recorded: the replica
    is ready. Beside a client whose tokens are claimed, it is not (review s16 review2 F-8)."""
    key = ec_key("ES384")
    clients = [trusted(key, iss=f"https://ehr{i}.example.org", token_reuse=r) for i, r in enumerate(reuse)]
    app = auth_app(auth_settings(*clients, store_url=role_url))
    client = app.test_client()
    change = f"REVOKE INSERT, DELETE ON seen_tokens FROM {ROLE}"
    with refusing(app, postgres_server, role_url, change, f"GRANT INSERT, DELETE ON seen_tokens TO {ROLE}"):
        readiness = client.get("/readyz")
        token = mint(key, SELECT_AUD, iss=clients[0].iss)
        calls = [client.post(SELECT_URL, json=select_body(), headers=bearer(token)) for _ in range(2)]
    assert readiness.status_code == ready, readiness.get_json()
    assert [c.status_code for c in calls] == [200, 200]  # the reusing client's token, twice: recorded
