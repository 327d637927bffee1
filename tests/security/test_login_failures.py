"""Login failure handling (等保 登录失败处理): wrong passwords are counted and audited, the
fifth in a row locks the account for 15 minutes (even against the right password), an
administrator (or `python app.py unlock`) lifts the lock.  Through the HTTP API, on both
databases."""
from __future__ import annotations

import pytest

from app import main as cli
from tests.conftest import ADMIN

pytestmark = pytest.mark.usefixtures("officer")


@pytest.fixture
def settings(settings):
    settings.test_clock = True
    return settings


@pytest.fixture
def officer(client):
    r = client.post("/engine-rest/user/create", json={"profile": {"id": "fgw1"}, "credentials": {"password": "pw"}})
    assert r.status_code == 204, r.get_json()


def _fail(client, times: int, user: str = "fgw1") -> list:
    return [client.as_user(user, "not-the-password").get("/engine-rest/version") for _ in range(times)]


def _events(client, **query) -> list:
    r = client.get("/api/v1/audit/system-events", query_string={"kind": "LoginFailed", **query})
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def test_the_fifth_wrong_password_locks_the_account_even_against_the_right_one(client):
    answers = _fail(client, 5)
    assert [r.status_code for r in answers] == [401] * 5
    assert "locked" not in answers[3].get_json()["message"]             # no hint before the lock
    assert "is locked after 5 wrong passwords" in answers[4].get_json()["message"]
    r = client.as_user("fgw1", "pw").get("/engine-rest/version")
    assert r.status_code == 401 and "is locked" in r.get_json()["message"]
    assert "/engine-rest/user/fgw1/unlock" in r.get_json()["message"]
    attempts = [e["data"].get("attempts") for e in _events(client, actor="fgw1")]
    assert attempts == [1, 2, 3, 4, 5, None]                           # the refused right password too
    until = _events(client, actor="fgw1")[4]["data"]["lockedUntil"]
    assert until.endswith("+0800") and until in r.get_json()["message"]     # the API's time, not naive UTC
    assert _events(client, actor="fgw1")[5]["data"]["lockedUntil"] == until


def test_a_success_before_the_limit_starts_the_count_again(client):
    _fail(client, 4)
    assert client.as_user("fgw1", "pw").get("/engine-rest/version").status_code == 200
    _fail(client, 4)
    assert client.as_user("fgw1", "pw").get("/engine-rest/version").status_code == 200


def test_the_lock_runs_out_after_15_minutes(client):
    client.put("/api/v1/test/clock", json={"now": "2025-10-09T09:00:00+08:00"})
    _fail(client, 5)
    client.put("/api/v1/test/clock", json={"now": "2025-10-09T09:14:00+08:00"})
    assert client.as_user("fgw1", "pw").get("/engine-rest/version").status_code == 401
    client.put("/api/v1/test/clock", json={"now": "2025-10-09T09:15:01+08:00"})
    assert client.as_user("fgw1", "pw").get("/engine-rest/version").status_code == 200
    _fail(client, 4)                                                    # a fresh count after the lock
    assert client.as_user("fgw1", "pw").get("/engine-rest/version").status_code == 200


def test_an_administrator_unlocks_and_only_an_administrator(client):
    r = client.post("/engine-rest/user/create", json={"profile": {"id": "zjj1"}, "credentials": {"password": "pw"}})
    assert r.status_code == 204
    _fail(client, 5)
    r = client.as_user("zjj1", "pw").post("/engine-rest/user/fgw1/unlock")
    assert r.status_code == 403 and "camunda-admin" in r.get_json()["message"]
    assert client.as_user("fgw1", "pw").get("/engine-rest/version").status_code == 401
    assert client.post("/engine-rest/user/fgw1/unlock").status_code == 204
    assert client.as_user("fgw1", "pw").get("/engine-rest/version").status_code == 200
    assert client.post("/engine-rest/user/nobody/unlock").status_code == 404
    unlocked = client.get("/api/v1/audit/system-events", query_string={"kind": "UserUnlocked"}).get_json()
    assert [(e["actor"], e["data"]["userId"]) for e in unlocked] == [("admin", "fgw1")]


def test_the_operator_s_unlock_on_the_server_is_audited_as_the_system(client, database_url, monkeypatch, capsys):
    _fail(client, 5)
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert cli(["unlock", "fgw1"]) == 0, capsys.readouterr()
    assert client.as_user("fgw1", "pw").get("/engine-rest/version").status_code == 200
    unlocked = client.get("/api/v1/audit/system-events", query_string={"kind": "UserUnlocked"}).get_json()
    assert [(e["actor"], e["data"]) for e in unlocked] == [("system", {"userId": "fgw1", "by": "app.py unlock"})]


def test_identity_verify_counts_and_respects_the_lock(client):
    for _ in range(5):
        r = client.post("/engine-rest/identity/verify", json={"username": "fgw1", "password": "guess"})
        assert r.get_json()["authenticated"] is False
    r = client.post("/engine-rest/identity/verify", json={"username": "fgw1", "password": "pw"})
    assert r.get_json()["authenticated"] is False
    assert client.as_user("fgw1", "pw").get("/engine-rest/version").status_code == 401


def test_unknown_users_are_audited_once_a_minute_without_their_id(client):
    assert [r.status_code for r in _fail(client, 3, user="s3cret-typed-in-the-user-field")] == [401] * 3
    events = [e for e in _events(client) if e["data"].get("reason") == "unknown user"]
    assert len(events) == 1 and events[0]["outcome"] == "denied" and events[0]["actor"] is None
    assert "s3cret" not in str(events) and len(events[0]["data"]["userIdSha256"]) == 16
    assert client.get("/engine-rest/user", query_string={"id": "s3cret-typed-in-the-user-field"}).get_json() == []


def test_a_token_holder_cannot_guess_the_current_password_without_limit(client):
    token = client.as_user("fgw1", "pw").post("/api/v1/tokens", json={"label": "stolen"}).get_json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    for _ in range(5):
        r = client.http.put("/engine-rest/user/fgw1/credentials", headers=bearer,
                            json={"password": "new-pw", "authenticatedUserPassword": "guess"})
        assert r.status_code == 403
    r = client.http.put("/engine-rest/user/fgw1/credentials", headers=bearer,
                        json={"password": "new-pw", "authenticatedUserPassword": "pw"})
    assert r.status_code == 403 and "is locked" in r.get_json()["message"]
    assert client.as_user("fgw1", "pw").get("/engine-rest/version").status_code == 401


def test_an_administrator_setting_a_new_password_lifts_the_lock(client):
    _fail(client, 5)
    assert client.put("/engine-rest/user/fgw1/credentials", json={"password": "fresh"}).status_code == 204
    assert client.as_user("fgw1", "fresh").get("/engine-rest/version").status_code == 200


def test_a_right_password_verified_after_a_concurrent_lock_is_refused(client, engine):
    """Guesses sent together all pass the first lock check; the right one among them must
    still meet the lock another one's failure set while its password was being checked."""
    from datetime import datetime

    from engine.identity import LOCKED, check_password
    from engine.models import User
    users = User.__table__

    class LockMeanwhile:
        """The connection, but the account is locked just before the re-check reads it
        (the first read goes through engine/fastsql.py, the re-check through execute)."""
        def __init__(self, conn):
            self.conn, self.calls = conn, 0

        def __getattr__(self, name):
            return getattr(self.conn, name)

        def execute(self, *args, **kw):
            self.calls += 1
            if self.calls == 1:                         # after the first read, before the re-check
                with engine.db.connect() as other:
                    other.execute(users.update().values(locked_until=datetime(2999, 1, 1)))
                    other.commit()
            return self.conn.execute(*args, **kw)

        def rollback(self):
            self.conn.rollback()

    with engine.db.connect() as conn:              # a credentials version no earlier check has vouched for
        conn.execute(users.update().values(credentials_version=users.c.credentials_version + 1000))
        conn.commit()
        spy = LockMeanwhile(conn)
        login = check_password(spy, "fgw1", "pw")
    assert spy.calls == 1 and login.principal is None and login.refused == LOCKED
