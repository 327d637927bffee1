"""Secrets: passwords are stored only as scrypt hashes, tokens only as SHA-256 digests and
are revocable and expire, and neither a password nor a token reaches a log line or an
audit event, even with every logger at DEBUG and SQL echo on."""
from __future__ import annotations

import base64
import logging
from datetime import timedelta

import sqlalchemy as sa

from engine.clock import clock
from engine.identity import hash_password, verify_password
from engine.models import ApiToken, Base, User

PASSWORD = "Pa55-秘密-e2e7c1"
NEW_PASSWORD = "N3w-口令-91f0aa"


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_passwords_are_stored_as_scrypt_hashes_with_a_salt_and_a_memory_hard_cost(client, engine, production_password_cost):
    client.create_user("li", ["fgw"], password=PASSWORD)
    client.create_user("wang", ["fgw"], password=PASSWORD)
    with engine.db.connect() as conn:
        hashes = dict(conn.execute(sa.select(User.id, User.password_hash).where(User.id.in_(["li", "wang"]))).all())
    for stored in hashes.values():
        scheme, n, r, p, salt, digest = stored.split("$")
        assert scheme == "scrypt" and int(n) >= 2**14 and int(r) >= 8       # OWASP: N=2^14+, r=8
        assert len(base64.b64decode(salt)) >= 16 and len(base64.b64decode(digest)) >= 32
        assert PASSWORD not in stored and verify_password(PASSWORD, stored) and not verify_password("pw", stored)
    assert hashes["li"] != hashes["wang"]                                       # salted
    assert hash_password(PASSWORD) != hash_password(PASSWORD)


def test_tokens_are_stored_as_digests_are_revocable_by_owner_or_admin_and_expire(client, engine):
    clerk = client.create_user("clerk", ["window"], password=PASSWORD)
    first = clerk.post("/api/v1/tokens", json={"label": "窗口电脑"}).get_json()
    second = clerk.post("/api/v1/tokens", json={"label": "短期", "ttlHours": 1}).get_json()
    with engine.db.connect() as conn:
        stored = conn.execute(sa.select(ApiToken.token_hash)).scalars().all()
    assert first["token"] not in stored and second["token"] not in stored
    assert client.http.get("/engine-rest/task", headers=bearer(first["token"])).status_code == 200
    outsider = client.create_user("outsider", ["fgw"])
    assert outsider.delete(f"/api/v1/tokens/{first['id']}").status_code == 404      # not theirs to revoke
    assert client.delete(f"/api/v1/tokens/{first['id']}").status_code == 204        # an administrator may
    assert client.http.get("/engine-rest/task", headers=bearer(first["token"])).status_code == 401
    assert client.http.get("/engine-rest/task", headers=bearer(second["token"])).status_code == 200
    try:
        clock.set(clock.now() + timedelta(hours=2))
        assert client.http.get("/engine-rest/task", headers=bearer(second["token"])).status_code == 401
    finally:
        clock.reset()


def test_a_changed_password_stops_the_old_one_at_once(client):
    client.create_user("li", ["fgw"], password=PASSWORD)
    assert client.http.get("/engine-rest/task", headers=basic("li", PASSWORD)).status_code == 200   # now cached
    assert client.put("/engine-rest/user/li/credentials", json={"password": NEW_PASSWORD}).status_code == 204
    assert client.http.get("/engine-rest/task", headers=basic("li", PASSWORD)).status_code == 401
    assert client.http.get("/engine-rest/task", headers=basic("li", NEW_PASSWORD)).status_code == 200


def test_no_password_or_token_reaches_the_logs_or_the_audit_trail(client, engine, caplog):
    caplog.set_level(logging.DEBUG)                                  # every logger, SQL echo included
    for name in ("sqlalchemy.engine", "werkzeug", "approvals", "engine", "api", "flask_smorest", "gunicorn"):
        caplog.set_level(logging.DEBUG, logger=name)
    r = client.post("/engine-rest/user/create", json={"profile": {"id": "li"}, "credentials": {"password": PASSWORD}})
    assert r.status_code == 204
    assert client.put("/engine-rest/group/camunda-admin/members/li").status_code == 204
    li = client.as_user("li", PASSWORD)
    assert li.get("/engine-rest/task").status_code == 200
    assert client.http.get("/engine-rest/task", headers=basic("li", PASSWORD + "x")).status_code == 401
    assert li.post("/engine-rest/identity/verify", json={"username": "li", "password": PASSWORD}).status_code == 200
    assert li.post("/engine-rest/identity/verify", json={"username": "li", "password": "wrong-" + PASSWORD}).status_code == 200
    issued = li.post("/api/v1/tokens", json={"label": "ci"}).get_json()
    token = issued["token"]
    assert client.http.get("/engine-rest/task", headers=bearer(token)).status_code == 200
    assert client.http.get("/engine-rest/task", headers=bearer(token + "x")).status_code == 401
    assert client.http.post("/engine-rest/user/create", headers=bearer(token),
                            json={"profile": {"id": "x" * 70}, "credentials": {"password": PASSWORD}}).status_code == 400
    assert li.put("/engine-rest/user/li/credentials", json={"password": NEW_PASSWORD,
                                                           "authenticatedUserPassword": PASSWORD}).status_code == 204
    assert client.http.delete(f"/api/v1/tokens/{issued['id']}", headers=bearer(token)).status_code == 204
    assert any(r.name.startswith("sqlalchemy.engine") for r in caplog.records), "SQL echo was not captured"
    logged = caplog.text + "".join(str(r.args) for r in caplog.records)
    secrets = {"password": PASSWORD, "new password": NEW_PASSWORD, "token": token,
               "Basic credentials": base64.b64encode(f"li:{PASSWORD}".encode()).decode()}
    for what, secret in secrets.items():
        assert secret not in logged, f"the {what} was logged"
    with engine.db.connect() as conn:                                # nor stored anywhere in clear
        for table in Base.metadata.sorted_tables:
            for row in conn.execute(table.select()):
                text = str(tuple(row))
                for what, secret in secrets.items():
                    assert secret not in text, f"the {what} is stored in {table.name}"
