"""Hostile input: XML with DTDs, entity expansion or external entities is refused quickly at
deploy; request bodies over APPROVALS_MAX_BODY are 413; malformed JSON, wrong variable
types, oversized numbers, NUL characters and unknown ids are a 400/404 with a message,
never a 500."""
from __future__ import annotations

import io
import json
import re
import time

import pytest

from engine.config import Settings
from tests.conftest import FIXTURES
from tests.security.models import one_task, two_tasks

BPMN_NS = 'xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"'
LAUGHS = ('<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
          + "".join(f' <!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i > 1 else "&lol;" * 10}">\n'
                    for i in range(1, 10))
          + f']>\n<bpmn:definitions {BPMN_NS} id="x" targetNamespace="t">&lol9;</bpmn:definitions>')
QUADRATIC = ('<?xml version="1.0"?>\n<!DOCTYPE q [<!ENTITY a "' + "a" * 50_000 + '">]>\n'
             f'<bpmn:definitions {BPMN_NS} id="x" targetNamespace="t">' + "&a;" * 20_000 + "</bpmn:definitions>")
HOSTILE_XML = {
    "billion laughs": LAUGHS.encode(),
    "quadratic blowup": QUADRATIC.encode(),
    "external entity (file)": (f'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                               f'<bpmn:definitions {BPMN_NS} id="x" targetNamespace="t">&x;</bpmn:definitions>').encode(),
    "external entity (network)": (f'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "http://127.0.0.1:9/x">]>'
                                  f'<bpmn:definitions {BPMN_NS} id="x" targetNamespace="t">&x;</bpmn:definitions>').encode(),
    "parameter entity": (f'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY % p SYSTEM "http://127.0.0.1:9/p.dtd"> %p;]>'
                         f'<bpmn:definitions {BPMN_NS} id="x" targetNamespace="t"/>').encode(),
    "external DTD": (f'<?xml version="1.0"?><!DOCTYPE bpmn:definitions SYSTEM "http://127.0.0.1:9/bpmn.dtd">'
                     f'<bpmn:definitions {BPMN_NS} id="x" targetNamespace="t"/>').encode(),
    "DTD after 100 KB of comment": (b'<?xml version="1.0"?>\n<!--' + b"x" * 100_000 + b"-->\n"
                                    + LAUGHS.split("\n", 1)[1].encode()),
    "UTF-16 billion laughs": LAUGHS.replace('<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-16"?>')
                                   .encode("utf-16"),
}


def deployments(client) -> int:
    return client.get("/engine-rest/deployment/count").get_json()["count"]


@pytest.mark.parametrize("attack", HOSTILE_XML)
def test_xml_with_a_dtd_entities_or_external_references_is_refused_quickly(client, attack):
    t0 = time.perf_counter()
    r = client.deploy(extra={"evil.bpmn": HOSTILE_XML[attack]})
    elapsed = time.perf_counter() - t0
    assert r.status_code == 400, r.get_data(as_text=True)[:300]
    assert elapsed < 2.0, f"{attack} took {elapsed:.2f}s to refuse"
    [problem] = r.get_json()["details"]["evil.bpmn"]["errors"]
    assert "DTD" in problem["message"], problem
    text = r.get_data(as_text=True)
    assert "root:" not in text and "lollollol" not in text and len(text) < 5000
    assert deployments(client) == 0


def test_xinclude_is_not_processed(client):
    bpmn = one_task("xi").replace(
        '<bpmn:startEvent id="S" />',
        '<bpmn:startEvent id="S"><bpmn:documentation><xi:include xmlns:xi="http://www.w3.org/2001/XInclude" '
        'href="/etc/passwd" parse="text"/></bpmn:documentation></bpmn:startEvent>')
    r = client.deploy(extra={"xi.bpmn": bpmn})
    assert "root:" not in r.get_data(as_text=True)
    if r.status_code == 200:
        xml = client.get("/engine-rest/process-definition/key/xi/xml").get_json()["bpmn20Xml"]
        assert "root:" not in xml


@pytest.mark.parametrize("name, content", [
    ("deep.form", "[" * 100_000 + "]" * 100_000),
    ("deep.json", '{"a":' * 100_000 + "1" + "}" * 100_000),
    ("binary.bpmn", bytes(range(256)) * 100),
    ("empty.bpmn", b""),
    ("latin1.form", "{\"id\": \"é\"}".encode("latin-1")),
])
def test_a_hostile_resource_file_is_a_400_not_a_crash(client, name, content):
    r = client.deploy(extra={name: content})
    assert r.status_code == 400, r.get_data(as_text=True)[:300]
    assert r.get_json()["type"] == "ParseException" and r.get_json()["message"]
    assert deployments(client) == 0


# --- request size -------------------------------------------------------------------------

def test_the_default_body_limit_is_10_mb_and_the_environment_changes_it(client, app):
    assert app.config["MAX_CONTENT_LENGTH"] == 10 * 1024 * 1024
    assert Settings.from_env({"APPROVALS_MAX_BODY": "1048576"}).max_content_length == 1048576
    client.deploy(extra={"simple.bpmn": one_task("simple")})
    huge = b'{"variables": {"blob": {"value": "' + b"x" * (10 * 1024 * 1024) + b'"}}}'
    r = client.post("/engine-rest/process-definition/key/simple/start", data=huge, content_type="application/json")
    assert r.status_code == 413, r.status_code
    assert r.get_json()["type"] == "InvalidRequestException" and "too large" in r.get_json()["message"]
    r = client.post("/engine-rest/deployment/create", data={"deployment-name": "big",
                                                            "x.bpmn": (io.BytesIO(b"<" * (11 * 1024 * 1024)), "x.bpmn")},
                    content_type="multipart/form-data")
    assert r.status_code == 413
    assert deployments(client) == 1
    assert client.get("/engine-rest/process-instance/count").get_json()["count"] == 0
    just_under = b'{"variables": {"blob": {"value": "' + b"x" * (1024 * 1024) + b'"}}}'
    r = client.post("/engine-rest/process-definition/key/simple/start", data=just_under,
                    content_type="application/json")
    assert r.status_code == 200


# --- malformed requests: 400 with a message, never 500 ----------------------------------------

WRITES = [("post", "/engine-rest/process-definition/key/simple/start"), ("post", "/engine-rest/task/{task}/complete"),
          ("post", "/engine-rest/task/{task}/claim"), ("post", "/engine-rest/task/{task}/assignee"),
          ("post", "/engine-rest/user/create"), ("post", "/engine-rest/group/create"),
          ("put", "/engine-rest/user/admin/credentials"), ("post", "/engine-rest/identity/verify"),
          ("post", "/engine-rest/message"), ("post", "/engine-rest/signal"),
          ("post", "/engine-rest/external-task/fetchAndLock"),
          ("post", "/api/v1/calendar/import"),
          ("put", "/api/v1/calendar/days/2025-10-08"), ("post", "/api/v1/process-instance/{case}/legal-clocks")]
MALFORMED = {
    "not JSON": ("{not json", "application/json"),
    "truncated": ('{"variables": {"a": ', "application/json"),
    "invalid UTF-8": (b'{"variables": {"a": {"value": "\xff\xfe"}}}', "application/json"),
}
ODD = {
    "a list, not an object": ("[1, 2, 3]", "application/json"),
    "a string": ('"hello"', "application/json"),
    "null": ("null", "application/json"),
    "NaN": ('{"variables": {"a": {"value": NaN, "type": "Double"}}, "userId": NaN}', "application/json"),
    "huge number": ('{"variables": {"a": {"value": 1' + "0" * 400 + ', "type": "Long"}}, "retries": 1' + "0" * 30 + "}",
                    "application/json"),
    "form data": ("a=b", "application/x-www-form-urlencoded"),
}


@pytest.fixture
def case_and_task(client):
    client.deploy(extra={"simple.bpmn": one_task("simple")})
    case = client.start("simple")["id"]
    [task] = client.tasks(processInstanceId=case)
    return case, task["id"]


def assert_clean_4xx(r, what):
    assert 400 <= r.status_code < 500, (what, r.status_code, r.get_data(as_text=True)[:300])
    body = r.get_json()
    assert body and body["type"].endswith("Exception") and body["message"], (what, r.get_data(as_text=True)[:300])


@pytest.mark.parametrize("bad", MALFORMED)
def test_a_body_that_is_not_json_is_a_400_with_a_message_on_every_write(client, case_and_task, bad):
    case, task = case_and_task
    data, content_type = MALFORMED[bad]
    for method, path in WRITES:
        path = path.format(task=task, case=case)
        r = getattr(client, method)(path, data=data, content_type=content_type)
        assert r.status_code == 400, (method, path, r.status_code, r.get_data(as_text=True)[:300])
        assert_clean_4xx(r, f"{method.upper()} {path} with {bad}")
    assert [t["id"] for t in client.tasks(processInstanceId=case)] == [task]


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/plain", None])
def test_a_json_body_not_declared_as_json_is_a_415_that_says_so_on_every_write(client, case_and_task, content_type):
    """curl -d without -H 'Content-Type: application/json' sends a form: the body was
    ignored, and a start refused for the form fields it did hold ("applicantName: Field is
    required") or a completion run without its variables."""
    case, task = case_and_task
    body = json.dumps({"variables": {"decision": {"value": "approve", "type": "String"}}})
    for method, path in WRITES:
        path = path.format(task=task, case=case)
        headers = {} if content_type else {"Content-Type": ""}
        r = getattr(client, method)(path, data=body, content_type=content_type, headers=headers)
        assert r.status_code == 415, (method, path, r.status_code, r.get_data(as_text=True)[:300])
        assert_clean_4xx(r, f"{method.upper()} {path} as {content_type}")
        assert "Content-Type: application/json" in r.get_json()["message"], r.get_json()
    assert [t["id"] for t in client.tasks(processInstanceId=case)] == [task]
    assert client.get("/engine-rest/process-instance/count").get_json()["count"] == 1


@pytest.mark.parametrize("odd", ODD)
def test_odd_json_bodies_are_never_a_server_error(client, case_and_task, odd):
    """A body of the wrong shape is refused with a message, or (when every field is
    optional) read as empty; the open task is never touched by a refused request."""
    case, task = case_and_task
    data, content_type = ODD[odd]
    for method, path in WRITES:
        path = path.format(task=task, case=case)
        r = getattr(client, method)(path, data=data, content_type=content_type)
        assert r.status_code < 500, (method, path, r.status_code, r.get_data(as_text=True)[:300])
        if r.status_code >= 400:
            assert_clean_4xx(r, f"{method.upper()} {path} with {odd}")
        elif path.endswith("/complete"):
            return                      # completed with no variables: a valid request
    assert [t["id"] for t in client.tasks(processInstanceId=case)] == [task]


NOT_OBJECTS = ["[]", '"x"', "null", "5", "true", "[{}]"]


@pytest.mark.parametrize("body", NOT_OBJECTS)
def test_a_task_query_body_that_is_not_an_object_is_a_400_saying_so(client, case_and_task, body):
    for path in ("/engine-rest/task", "/engine-rest/task/count"):
        r = client.post(path, data=body, content_type="application/json")
        assert r.status_code == 400, (path, r.status_code, r.get_data(as_text=True)[:300])
        assert r.get_json()["message"] == "the body must be a JSON object (Camunda's task query)", r.get_json()


@pytest.mark.parametrize("body", NOT_OBJECTS)
def test_any_other_body_that_is_not_an_object_is_a_400_naming_the_request(client, case_and_task, body):
    case, task = case_and_task
    created = client.post("/engine-rest/filter/create", json={"resourceType": "Task", "name": "mine", "query": {}})
    paths = [p.format(task=task, case=case) for _, p in WRITES if _ == "post"] + [
        "/engine-rest/filter/create", f"/engine-rest/filter/{created.get_json()['id']}/list",
        f"/engine-rest/process-instance/{case}/variables", f"/engine-rest/task/{task}/variables"]
    for path in paths:
        r = client.post(path, data=body, content_type="application/json")
        assert r.status_code == 400, (path, r.status_code, r.get_data(as_text=True)[:300])
        assert "must be a JSON object" in r.get_json()["message"] and path in r.get_json()["message"], \
            (path, r.get_json())
    assert [t["id"] for t in client.tasks(processInstanceId=case)] == [task]


def test_an_integer_of_more_than_4300_digits_in_a_body_is_a_400_that_changes_nothing(client, case_and_task):
    """Python refuses to convert it (sys.set_int_max_str_digits): json.loads's ValueError was a 500."""
    case, task = case_and_task
    big = "9" * 5000
    writes = [(m, p.format(task=task, case=case)) for m, p in WRITES] + [("post", "/engine-rest/task/count")]
    for method, path in writes:
        r = getattr(client, method)(path, data='{"variables": {"n": {"value": %s}}, "n": %s}' % (big, big),
                                    content_type="application/json")
        assert r.status_code == 400, (method, path, r.status_code, r.get_data(as_text=True)[:300])
        assert "a number in the body has more than 4300 digits" in r.get_json()["message"], (path, r.get_json())
    assert [t["id"] for t in client.tasks(processInstanceId=case)] == [task]
    assert client.get("/engine-rest/process-instance/count").get_json()["count"] == 1


def test_a_form_with_an_integer_of_more_than_4300_digits_is_refused_naming_the_file(client):
    form = '{"id": "f", "type": "default", "components": [{"type": "number", "key": "n", "validate": {"max": %s}}]}'
    r = client.deploy(extra={"big.form": form % ("9" * 5000)})
    assert r.status_code == 400, r.get_data(as_text=True)[:300]
    [problem] = r.get_json()["details"]["big.form"]["errors"]
    column = form.index("%s") + 1
    assert problem["message"].startswith(f"line 1, column {column}: a number has more than 4300 digits"), problem
    assert (problem["line"], problem["column"]) == (1, column), problem
    assert r.get_json()["message"].count("big.form") == 1, r.get_json()["message"]
    assert deployments(client) == 0


@pytest.mark.parametrize("variables", [
    {"n": {"value": [1, 2], "type": "Integer"}}, {"n": {"value": {"a": 1}, "type": "String"}},
    {"n": {"value": "maybe", "type": "Boolean"}}, {"n": {"value": "not-a-date", "type": "Date"}},
    {"n": {"value": "{", "type": "Json"}}, {"n": {"value": 1e400, "type": "Double"}},
    {"n": {"value": 2**63, "type": "Long"}}, {"n": {"value": 1, "type": "Object"}},
    {"n": {"value": 1, "type": ["String"]}}, {"": {"value": 1}}, {"x" * 300: {"value": 1}},
    {"__class__": {"value": 1}}, {"n": "bare value"}, {"n": None}, [{"value": 1}], "variables",
    # the state's own encoding of a typed value: restored as one, and a wrong one failed every
    # later command on the case once it left the workflow cache (DELETE included)
    {"n": {"value": {"typename": "datetime", "value": "nope"}, "type": "Json"}},
    {"n": {"value": [{"a": {"typename": "UUID", "value": "x"}}]}},
    # JSON has no NaN or Infinity: a top-level NaN was a Double whose NaN made the answers
    # of GET .../variables invalid JSON; inside an object, it read back as null
    {"n": {"value": "NaN", "type": "Json"}}, {"n": {"value": '{"a": [Infinity]}', "type": "Json"}},
    {"n": {"value": '{"a": 1e400}', "type": "Json"}},
    # ... and where the body itself carries them (NaN, Infinity, 1e400 literals, which Python's
    # parser takes): a Json value sent as an object, or an untyped one, read back with null
    {"n": {"value": {"a": float("nan")}, "type": "Json"}}, {"n": {"value": [float("inf")], "type": "Json"}},
    {"n": {"value": {"a": [float("-inf")]}}},
])
def test_wrong_variable_types_and_names_are_a_400_that_changes_nothing(client, case_and_task, variables):
    case, task = case_and_task
    for r in (client.post("/engine-rest/process-definition/key/simple/start", json={"variables": variables}),
              client.complete(task, variables)):
        assert r.status_code == 400, (variables, r.get_data(as_text=True)[:300])
        assert r.get_json()["message"]
    assert client.get("/engine-rest/process-instance/count").get_json()["count"] == 1
    assert [t["id"] for t in client.tasks(processInstanceId=case)] == [task]



@pytest.mark.parametrize("value, says", [(10**400, "401-digit number"), ("1_0", "'1_0'"), ("1e400", "finite")])
def test_a_double_beyond_range_or_spelled_with_underscores_is_a_400_naming_the_variable(client, case_and_task,
                                                                                      value, says):
    case, task = case_and_task
    r = client.complete(task, {"fee": {"value": value, "type": "Double"}})
    assert r.status_code == 400 and "variable 'fee'" in r.get_json()["message"] and says in r.get_json()["message"], \
        r.get_json()
    assert [t["id"] for t in client.tasks(processInstanceId=case)] == [task]


OWN_TYPENAMES = {"invoice": {"typename": "Invoice", "amount": 100},
                 "items": [{"typename": "Item", "n": 1}, {"typename": 3}, {"typename": ["a"]}]}


def test_a_typename_key_of_ones_own_is_kept_as_data(client, engine, monkeypatch):
    """Kept as data when the case is restored from its stored state too: SpiffWorkflow's
    restore called None on a typename it does not know, so every later command on the
    case (its deletion too) failed once it left the workflow cache."""
    monkeypatch.setattr(engine.workflows, "size", 0)           # every command restores the case
    client.deploy(extra={"two.bpmn": two_tasks("two")})
    wire = {name: {"value": value, "type": "Json"} for name, value in OWN_TYPENAMES.items()}
    case = client.start("two", variables=wire)["id"]
    r = client.get(f"/engine-rest/process-instance/{case}/variables")
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    assert {name: json.loads(r.get_json()[name]["value"]) for name in OWN_TYPENAMES} == OWN_TYPENAMES
    [first] = client.tasks(processInstanceId=case)
    r = client.complete(first["id"], {"invoice2": {"value": {"typename": "Invoice"}, "type": "Json"}})
    assert r.status_code == 204, r.get_data(as_text=True)[:300]
    [second] = client.tasks(processInstanceId=case)
    assert client.complete(second["id"]).status_code == 204
    rows = client.get("/engine-rest/history/variable-instance", query_string={"processInstanceId": case}).get_json()
    stored = {row["name"]: json.loads(row["value"]) for row in rows}   # Camunda sends a Json value as its text
    assert stored == {**OWN_TYPENAMES, "invoice2": {"typename": "Invoice"}}


TAG = {"typename": {"value": "datetime"}, "value": {"value": "nope"}}   # two variables, spelling a typed value


def test_variables_named_typename_and_value_are_two_variables(client, engine, monkeypatch):
    """A case's variables are one dict in its stored state: SpiffWorkflow restored that dict
    as a datetime, so such names (a form field "typename", say) failed every later command
    on the case, its deletion too, or with a valid date turned all its variables into one."""
    monkeypatch.setattr(engine.workflows, "size", 0)           # every command restores the case
    client.deploy(FIXTURES / "message_bank.bpmn", extra={"two.bpmn": two_tasks("two")})
    case = client.start("two", variables=TAG)["id"]
    [first] = client.tasks(processInstanceId=case)
    r = client.complete(first["id"], {"typename": {"value": "UUID"}, "value": {"value": "x"}})
    assert r.status_code == 204, r.get_data(as_text=True)[:300]
    r = client.get(f"/engine-rest/process-instance/{case}/variables")
    assert {k: v["value"] for k, v in r.get_json().items()} == {"typename": "UUID", "value": "x"}
    assert client.delete(f"/engine-rest/process-instance/{case}").status_code == 204
    bank = client.start("bank_account", business_key="SZ-1")["id"]
    r = client.post("/engine-rest/message", json={"messageName": "BankAccountOpened", "businessKey": "SZ-1",
                                                  "processVariables": {"typename": {"value": "timedelta"},
                                                                       "value": {"value": "2020-01-01"}}})
    assert r.status_code == 204, r.get_data(as_text=True)[:300]
    r = client.get(f"/engine-rest/process-instance/{bank}/variables")
    assert {k: v["value"] for k, v in r.get_json().items()} == {"typename": "timedelta", "value": "2020-01-01"}
    assert client.delete(f"/engine-rest/process-instance/{bank}").status_code == 204


UNKNOWN = "no-such-id"


def test_unknown_ids_on_every_path_of_the_api_are_a_404_or_400_with_a_message(client, case_and_task):
    spec = client.http.get("/engine-rest/openapi.json").get_json()
    tried = 0
    for path, operations in spec["paths"].items():
        if "{" not in path:
            continue
        concrete = re.sub(r"\{[^}]+\}", UNKNOWN, path)
        for method in operations:
            if method not in ("get", "post", "put", "delete"):
                continue
            r = getattr(client, method)(concrete, json={} if method in ("post", "put") else None)
            tried += 1
            assert r.status_code in (400, 404), (method.upper(), concrete, r.status_code, r.get_data(as_text=True)[:200])
            assert r.get_json()["message"], (method, concrete)
    assert tried > 40


@pytest.mark.parametrize("weird", ["abc%00def", "%ff%fe", "a" * 5000, "..%2F..%2Fetc%2Fpasswd", "%E4%B8%AD%E6%96%87",
                                   "' OR 1=1 --"])
def test_odd_ids_and_query_values_are_never_a_server_error(client, case_and_task, weird):
    for path in (f"/engine-rest/task/{weird}", f"/engine-rest/process-instance/{weird}/variables",
                 f"/engine-rest/process-definition/key/{weird}/start", f"/engine-rest/history/process-instance/{weird}"):
        r = client.get(path) if not path.endswith("start") else client.post(path, json={})
        assert r.status_code in (400, 404), (path, r.status_code, r.get_data(as_text=True)[:200])
    for query in ({"processInstanceId": weird}, {"maxResults": "99999999999999999999999"}, {"firstResult": "-1"},
                  {"sortBy": weird, "sortOrder": "asc"}, {"processInstanceBusinessKey": weird}):
        r = client.get("/engine-rest/task", query_string=query)
        assert r.status_code in (200, 400), (query, r.status_code, r.get_data(as_text=True)[:200])
    r = client.get("/engine-rest/process-definition", query_string={"version": str(2**70)})
    assert r.status_code in (200, 400)


@pytest.mark.parametrize("header", ["Basic " + "A" * 100_000, "Bearer " + "x" * 10_000, "Basic 5Lit5paH",
                                    "Digest username=admin", "Basic", "Bearer ", "Bearer apr_\u00c3\u00a9"])
def test_garbage_credentials_are_a_401(client, header):
    r = client.http.get("/engine-rest/task", headers={"Authorization": header})
    assert r.status_code == 401 and r.get_json()["type"] == "AuthenticationException"


@pytest.mark.parametrize("credentials", ["\u00c3\u00a9", "YWRt\u00c3\u00a9", "\u00e9"])
def test_basic_credentials_that_are_not_ascii_are_a_401_saying_they_are_malformed(client, credentials):
    """HTTP headers arrive as latin-1 text: a UTF-8 'é' pasted into one is 'Ã©', which base64
    refuses with a ValueError of its own (not binascii.Error)."""
    for path in ("/engine-rest/version", "/engine-rest/task"):
        r = client.http.get(path, headers={"Authorization": "Basic " + credentials})
        assert r.status_code == 401, (path, r.status_code, r.get_data(as_text=True)[:300])
        assert r.get_json()["message"] == "malformed Basic credentials", r.get_json()


LONE = "\ud800"     # a UTF-16 surrogate without its pair: JSON's "\ud800" escape lets it in
SURROGATES = {
    "a value": {"variables": {"n": {"value": "a" + LONE}}},
    "a name": {"variables": {"n" + LONE: {"value": 1}}},
    "a Json variable's text": {"variables": {"n": {"value": '{"a": ["\\udfff"]}', "type": "Json"}}},
    "a business key": {"businessKey": LONE},
}


@pytest.mark.parametrize("where", SURROGATES)
def test_a_lone_surrogate_is_a_400_naming_where_it_is(client, engine, monkeypatch, where):
    """It cannot be encoded as UTF-8: the audit chain's hash of the command was a 500, and
    where nothing hashed it (a worker's failure report) the case kept it and every read of
    its variables was a 500."""
    monkeypatch.setattr(engine.workflows, "size", 0)           # every command restores the case
    client.deploy(FIXTURES / "external_registration.bpmn", extra={"two.bpmn": two_tasks("two")})
    case = client.start("two")["id"]
    [task] = client.tasks(processInstanceId=case)
    worker_case = client.start("company_setup")["id"]
    [locked] = client.post("/engine-rest/external-task/fetchAndLock", json={
        "workerId": "w", "maxTasks": 1, "topics": [{"topicName": "registration", "lockDuration": 60000}]}).get_json()
    body = SURROGATES[where]
    variables = {k: v for k, v in body.items() if k == "variables"}
    for path, payload in (("/engine-rest/process-definition/key/two/start", body),
                          (f"/engine-rest/task/{task['id']}/complete", variables),
                          ("/engine-rest/message", {"messageName": "x", "businessKey": body.get("businessKey"),
                                                    "processVariables": variables.get("variables")}),
                          (f"/engine-rest/external-task/{locked['id']}/failure",
                           {"workerId": "w", "retries": 1, "errorMessage": "e", **variables}),
                          (f"/engine-rest/external-task/{locked['id']}/complete", {"workerId": "w", **variables})):
        if "variables" in path and not variables or "task" in path and not variables:
            continue
        r = client.post(path, data=json.dumps(payload), content_type="application/json")
        assert r.status_code == 400, (path, r.status_code, r.get_data(as_text=True)[:300])
        assert "lone UTF-16 surrogate" in r.get_json()["message"], r.get_json()
        assert ("n" if where != "a business key" else "businessKey") in r.get_json()["message"]
    r = client.post(f"/engine-rest/external-task/{locked['id']}/failure", data=json.dumps(
        {"workerId": "w", "errorMessage": LONE, "errorDetails": LONE}), content_type="application/json")
    assert r.status_code == 400 and "errorMessage" in r.get_json()["message"]
    assert client.get("/engine-rest/process-instance/count").get_json()["count"] == 2
    for instance in (case, worker_case):
        r = client.get(f"/engine-rest/process-instance/{instance}/variables")
        assert r.status_code == 200 and r.get_json() == {}, r.get_data(as_text=True)[:300]
    assert [t["id"] for t in client.tasks(processInstanceId=case)] == [task["id"]]
    assert client.complete(task["id"]).status_code == 204
    assert client.delete(f"/engine-rest/process-instance/{worker_case}").status_code == 204


@pytest.mark.parametrize("value", ["9999-12-31T23:59:59.000+0000", "9999-12-31T20:00:00.000-1000",
                                   "0001-01-01T00:00:00.000+0800", "0001-01-01T00:00:00"])
def test_a_date_beyond_the_years_1_to_9999_is_a_400_naming_the_variable(client, engine, monkeypatch, value):
    """Stored in UTC and shown in the display zone (Asia/Shanghai), such a date overflowed
    Python's datetime once converted: the start was accepted, then every read of the case's
    variables, and every worker's fetch on the topic (the other cases' tasks too), was refused."""
    monkeypatch.setattr(engine.workflows, "size", 0)           # every command restores the case
    client.deploy(FIXTURES / "external_registration.bpmn", extra={"two.bpmn": two_tasks("two")})
    due = {"due": {"value": value, "type": "Date"}}
    r = client.post("/engine-rest/process-definition/key/two/start", json={"variables": due})
    assert r.status_code == 400, r.get_data(as_text=True)[:300]
    assert "variable 'due'" in r.get_json()["message"] and "out of range" in r.get_json()["message"]
    assert client.get("/engine-rest/process-instance/count").get_json()["count"] == 0
    case = client.start("two")["id"]
    [task] = client.tasks(processInstanceId=case)
    assert client.complete(task["id"], due).status_code == 400
    client.start("company_setup")
    fetch = {"workerId": "w", "maxTasks": 5, "topics": [{"topicName": "registration", "lockDuration": 60000}]}
    [locked] = client.post("/engine-rest/external-task/fetchAndLock", json=fetch).get_json()
    r = client.post(f"/engine-rest/external-task/{locked['id']}/complete", json={"workerId": "w", "variables": due})
    assert r.status_code == 400 and "variable 'due'" in r.get_json()["message"]
    r = client.post(f"/engine-rest/external-task/{locked['id']}/unlock")
    assert r.status_code == 204
    client.start("company_setup")
    r = client.post("/engine-rest/external-task/fetchAndLock", json=fetch)
    assert r.status_code == 200 and len(r.get_json()) == 2, r.get_data(as_text=True)[:300]
    assert client.get(f"/engine-rest/process-instance/{case}/variables").get_json() == {}
    assert client.complete(task["id"]).status_code == 204
