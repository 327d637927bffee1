"""Camunda's task query filters on GET /task and /task/count (query parameters) and on
POST /task and /task/count (a JSON body), as a service hall's Tasklist uses them: an
overdue view (dueBefore=now), a process's tasks, a case's variables.  Each filter is
tried on tasks that differ in it, by an officer (who sees fgw's three) and by the
administrator (all five), the count always the list's length.  A parameter of Camunda's
that is not served is a 400 naming it; a name Camunda does not know is ignored."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from engine.clock import clock
from tests.conftest import typed
from tests.security.models import one_task

ATTRS = ('camunda:candidateGroups="${groups}" camunda:candidateUsers="${users}" camunda:assignee="${assignee}" '
         'camunda:dueDate="${due}" camunda:followUpDate="${followUp}" camunda:priority="${prio}"')

# The five cases, each one task (element T), started a day apart from 2030-01-01 10:00 UTC.
# fgw1, of fgw, sees A, B and C (offered to fgw; C is also assigned to fgw1).
CASES = {
    "A": ("permit", dict(groups="fgw", users="", assignee=None, due="2030-03-01T09:00:00", followUp=None, prio=80,
                         amount=500, applicant="张三", urgent=True, office="North")),
    "B": ("permit", dict(groups="fgw", users="li", assignee=None, due="2030-03-04T17:30:00",
                         followUp="2030-03-02T09:00:00", prio=50, amount=50, applicant="李四", urgent=False,
                         office="north")),
    "C": ("permit", dict(groups="fgw", users="", assignee="fgw1", due=None, followUp="2030-02-01T09:00:00", prio=20,
                         amount=5000.5, applicant="王五", urgent=False, office="South")),
    "D": ("licence", dict(groups="zjj", users="", assignee=None, due="2030-03-01T09:00:00", followUp=None, prio=90,
                          amount="500", applicant="张三", urgent=True, office="South")),
    "E": ("licence", dict(groups="", users="wang", assignee=None, due=None, followUp=None, prio=50,
                          amount=None, applicant="赵六", urgent=False, office="South")),
}
EVERY, OFFICERS = set(CASES), {"A", "B", "C"}
BUSINESS_KEYS = {"A": "BK-A", "B": "BK-B", "C": "BK-C", "D": "X-D", "E": "X-E"}


@pytest.fixture
def hall(client):
    """The five cases; returns (the officer fgw1, {letter: its task's JSON as the admin lists it})."""
    r = client.deploy(extra={"permit.bpmn": one_task("permit", ATTRS).replace('name="审查"', 'name="Review Permit"'),
                             "licence.bpmn": one_task("licence", ATTRS).replace('name="审查"', 'name="登记审查"')})
    assert r.status_code == 200, r.get_json()
    officer = client.create_user("fgw1", ["fgw"])
    for day, (letter, (key, variables)) in enumerate(CASES.items(), start=1):
        clock.set(datetime(2030, 1, day, 10, 0, tzinfo=timezone.utc))
        client.start(key, typed(**variables), business_key=BUSINESS_KEYS[letter])
    by_key = {t["businessKey"]: t for t in client.tasks()}
    return officer, {letter: by_key[key] for letter, key in BUSINESS_KEYS.items()}


def letters(listed: list, tasks: dict) -> set:
    ids = {t["id"]: letter for letter, t in tasks.items()}
    return {ids[t["id"]] for t in listed}


def listed_and_counted(reader, tasks: dict, query: dict) -> set:
    """The letters of the tasks `reader` lists with GET `query`, checked against its count."""
    r = reader.get("/engine-rest/task", query_string=query)
    assert r.status_code == 200, (query, r.get_json())
    found = letters(r.get_json(), tasks)
    r = reader.get("/engine-rest/task/count", query_string=query)
    assert r.status_code == 200, (query, r.get_json())
    assert r.get_json()["count"] == len(found), query
    return found


def posted_and_counted(reader, tasks: dict, body: dict, paging: str = "") -> list:
    """The letters, in order, of the tasks `reader` lists with POST `body`, checked against its count."""
    r = reader.post(f"/engine-rest/task{paging}", json=body)
    assert r.status_code == 200, (body, r.get_json())
    ids = {t["id"]: letter for letter, t in tasks.items()}
    found = [ids[t["id"]] for t in r.get_json()]
    r = reader.post("/engine-rest/task/count", json=body)
    assert r.status_code == 200, (body, r.get_json())
    if not paging:
        assert r.get_json()["count"] == len(found), body
    return found


DUE_SOON = "2030-03-02T00:00:00.000+0800"
# query -> the letters of the tasks it finds among all five (the officer finds those of A, B, C)
FILTERS = [
    ({"dueBefore": DUE_SOON}, "AD"),
    ({"dueAfter": DUE_SOON}, "B"),
    ({"dueDate": "2030-03-01T09:00:00.000+0800"}, "AD"),
    ({"dueDate": "2030-03-01T01:00:00.000Z"}, "AD"),
    ({"due": "2030-03-01T09:00:00.000+0800"}, "AD"),                     # Camunda's deprecated name
    ({"withoutDueDate": "true"}, "CE"),
    ({"dueBefore": DUE_SOON, "withoutDueDate": "true"}, ""),
    ({"followUpBefore": "2030-03-01T00:00:00.000+0800"}, "C"),
    ({"followUpAfter": "2030-03-01T00:00:00.000+0800"}, "B"),
    ({"followUpDate": "2030-03-02T09:00:00.000+0800"}, "B"),
    ({"followUpBeforeOrNotExistent": "2030-03-01T00:00:00.000+0800"}, "ACDE"),
    ({"createdBefore": "2030-01-02T00:00:00.000+0000"}, "A"),
    ({"createdAfter": "2030-01-03T00:00:00.000+0000"}, "CDE"),
    ({"createdAfter": "2030-01-02T00:00:00.000+0000", "createdBefore": "2030-01-04T00:00:00.000+0000"}, "BC"),
    ({"nameLike": "%review%"}, "ABC"),
    ({"nameLike": "登记%"}, "DE"),
    ({"nameNotEqual": "review permit"}, "DE"),
    ({"nameNotLike": "%PERMIT"}, "DE"),
    ({"descriptionLike": "%"}, ""),
    ({"processDefinitionKey": "licence"}, "DE"),
    ({"processDefinitionKeyIn": "permit,other"}, "ABC"),
    ({"processDefinitionKeyIn": "permit,licence"}, "ABCDE"),
    ({"taskDefinitionKeyIn": "T,X"}, "ABCDE"),
    ({"taskDefinitionKeyNotIn": "T"}, ""),
    ({"taskDefinitionKeyLike": "_"}, "ABCDE"),
    ({"processInstanceBusinessKeyIn": "BK-A,X-D"}, "AD"),
    ({"processInstanceBusinessKeyLike": "BK-%"}, "ABC"),
    ({"processInstanceBusinessKeyLike": "X-_"}, "DE"),
    ({"processInstanceBusinessKeyLike": "x-_"}, ""),                     # as in Camunda, case matters here
    ({"assigned": "true"}, "C"),
    ({"unassigned": "true"}, "ABDE"),
    ({"assigned": "false"}, "ABCDE"),
    ({"assigneeIn": "fgw1,nobody"}, "C"),
    ({"assigneeNotIn": "nobody"}, "C"),                                  # an unassigned task has no assignee to compare
    ({"assigneeLike": "fgw%"}, "C"),
    ({"owner": "fgw1"}, ""),                                             # this server sets no owner
    ({"involvedUser": "li"}, "B"),                                       # a candidate user
    ({"involvedUser": "fgw1"}, "C"),                                     # the assignee
    ({"involvedUser": "wang"}, "E"),
    ({"candidateGroups": "fgw,zjj"}, "ABD"),                             # unassigned ones, as a candidate query
    ({"candidateGroups": "fgw,zjj", "includeAssignedTasks": "true"}, "ABCD"),
    ({"candidateGroups": "zjj"}, "D"),
    ({"withCandidateGroups": "true"}, "ABD"),
    ({"withoutCandidateGroups": "true"}, "E"),
    ({"withCandidateUsers": "true"}, "BE"),
    ({"withoutCandidateUsers": "true", "includeAssignedTasks": "true"}, "ACD"),
    ({"priority": "50"}, "BE"),
    ({"minPriority": "80"}, "AD"),
    ({"maxPriority": "20"}, "C"),
    ({"minPriority": "50", "maxPriority": "80"}, "ABE"),
    ({"tenantIdIn": "t1"}, ""),
    ({"withoutTenantId": "true"}, "ABCDE"),
    ({"active": "true"}, "ABCDE"),
    ({"suspended": "true"}, ""),                                         # no case is ever suspended here
    ({"processVariables": "amount_eq_500"}, "AD"),                       # the Integer 500 and the String "500"
    ({"processVariables": "amount_gt_100"}, "AC"),                       # numbers only: not D's String
    ({"processVariables": "amount_gteq_50"}, "ABC"),
    ({"processVariables": "amount_lt_500"}, "B"),
    ({"processVariables": "amount_lteq_500"}, "AB"),
    ({"processVariables": "amount_neq_500"}, "BCE"),                     # E's null is not 500 either
    ({"processVariables": "amount_eq_5000.5"}, "C"),
    ({"processVariables": "applicant_eq_张三"}, "AD"),
    ({"processVariables": "applicant_neq_张三"}, "BCE"),
    ({"processVariables": "applicant_like_李%"}, "B"),
    ({"processVariables": "applicant_notLike_张%"}, "BCE"),
    ({"processVariables": "urgent_eq_true"}, "AD"),
    ({"processVariables": "urgent_eq_false"}, "BCE"),
    ({"processVariables": "amount_gt_10,urgent_eq_true"}, "A"),
    ({"processVariables": "nothing_eq_1"}, ""),
    ({"processVariables": "APPLICANT_eq_张三"}, ""),
    ({"processVariables": "APPLICANT_eq_张三", "variableNamesIgnoreCase": "true"}, "AD"),
    ({"processVariables": "office_eq_NORTH"}, ""),
    ({"processVariables": "office_eq_NORTH", "variableValuesIgnoreCase": "true"}, "AB"),
    ({"processVariables": "office_like_n%", "variableValuesIgnoreCase": "true"}, "AB"),
    ({"_": "1712345678901", "someOtherTool": "x"}, "ABCDE"),           # not Camunda's: ignored, as Camunda does
]


def test_each_filter_finds_the_tasks_that_differ_in_it_for_the_officer_and_the_administrator(client, hall):
    officer, tasks = hall
    for query, found in FILTERS:                   # one hall for all: each query only reads
        assert listed_and_counted(client, tasks, query) == set(found), query
        assert listed_and_counted(officer, tasks, query) == set(found) & OFFICERS, query


def test_filters_by_ids_and_definitions_name_the_tasks_and_cases_listed(client, hall):
    officer, tasks = hall
    for query, found in (({"taskId": tasks["B"]["id"]}, "B"),
                         ({"taskIdIn": f"{tasks['A']['id']},{tasks['E']['id']}"}, "AE"),
                         ({"processInstanceIdIn": f"{tasks['A']['processInstanceId']},"
                                                  f"{tasks['D']['processInstanceId']}"}, "AD"),
                         ({"processDefinitionId": tasks["D"]["processDefinitionId"]}, "DE"),
                         ({"executionId": tasks["C"]["executionId"]}, "C"),            # a task's execution: its case
                         ({"activityInstanceIdIn": f"{tasks['A']['id']},{tasks['D']['id']}"}, "AD")):
        assert listed_and_counted(client, tasks, query) == set(found), query
        assert listed_and_counted(officer, tasks, query) == set(found) & OFFICERS, query


def test_a_task_created_at_a_millisecond_is_found_by_that_millisecond(client, hall):
    """createdOn (and dueDate, followUpDate) compare to the millisecond, as Camunda writes
    a date: the created time a task is listed with finds it again."""
    _, tasks = hall
    for letter in "BD":
        assert listed_and_counted(client, tasks, {"createdOn": tasks[letter]["created"]}) == {letter}


def test_a_claim_updates_a_task_for_updated_after_and_the_last_updated_order(client, hall):
    """updatedAfter and sortBy=lastUpdated read when a task was last claimed, unclaimed or
    reassigned; a task never updated counts from its creation."""
    officer, tasks = hall
    clock.set(datetime(2030, 2, 1, 10, 0, tzinfo=timezone.utc))
    assert officer.post(f"/engine-rest/task/{tasks['A']['id']}/claim", json={"userId": "fgw1"}).status_code == 204
    after = "2030-01-15T00:00:00.000+0000"
    assert listed_and_counted(client, tasks, {"updatedAfter": after}) == {"A"}
    assert listed_and_counted(client, tasks, {"updatedAfter": "2030-01-02T12:00:00.000+0000"}) == {"A", "C", "D", "E"}
    assert listed_and_counted(officer, tasks, {"updatedAfter": after, "assigned": "true"}) == {"A"}
    listed = client.tasks(sortBy="lastUpdated", sortOrder="desc")
    assert [letters([t], tasks).pop() for t in listed] == ["A", "E", "D", "C", "B"]


def test_an_overdue_view_lists_the_tasks_due_before_now(client, hall):
    """The hall's red list: dueBefore=now, sorted by due date (both given, as Camunda wants)."""
    officer, tasks = hall
    clock.set(datetime(2030, 3, 3, 0, 0, tzinfo=timezone.utc))
    now = "2030-03-03T08:00:00.000+0800"
    r = officer.get("/engine-rest/task", query_string={"dueBefore": now, "sortBy": "dueDate", "sortOrder": "asc"})
    assert r.status_code == 200 and letters(r.get_json(), tasks) == {"A"}
    assert listed_and_counted(client, tasks, {"dueBefore": now}) == {"A", "D"}


# --- POST /task and /task/count -------------------------------------------------------------

BODIES = [
    ({"processDefinitionKeyIn": ["permit", "other"]}, "ABC"),
    ({"processDefinitionKeyIn": "permit,other"}, "ABC"),                  # a comma list, as in Camunda's example
    ({"processInstanceBusinessKeyIn": ["BK-A", "X-D"], "dueBefore": DUE_SOON}, "AD"),
    ({"candidateGroups": ["fgw", "zjj"], "includeAssignedTasks": True}, "ABCD"),
    ({"candidateGroups": ["fgw", "zjj"], "includeAssignedTasks": None, "withoutCandidateUsers": False}, "ABD"),
    ({"withoutDueDate": True, "minPriority": 50}, "E"),
    ({"nameLike": "%REVIEW%", "assigned": True}, "C"),
    ({"processVariables": [{"name": "amount", "operator": "eq", "value": 500}]}, "A"),        # typed: a number
    ({"processVariables": [{"name": "amount", "operator": "eq", "value": "500"}]}, "D"),      # typed: a string
    ({"processVariables": [{"name": "amount", "operator": "gteq", "value": 50.0}]}, "ABC"),
    ({"processVariables": [{"name": "amount", "operator": "eq", "value": None}]}, "E"),
    ({"processVariables": [{"name": "urgent", "operator": "eq", "value": True},
                           {"name": "applicant", "operator": "eq", "value": "张三"}]}, "AD"),
    ({"processVariables": [{"name": "urgent", "operator": "neq", "value": True}]}, "BCE"),
    ({"caseInstanceId": None, "delegationState": None, "withCommentAttachmentInfo": False, "orQueries": []},
     "ABCDE"),                                                           # Camunda's, unset: nothing asked
    ({}, "ABCDE"),
]


def test_a_json_body_filters_as_the_query_parameters_do(client, hall):
    officer, tasks = hall
    for body, found in BODIES:
        assert set(posted_and_counted(client, tasks, body)) == set(found), body
        assert set(posted_and_counted(officer, tasks, body)) == set(found) & OFFICERS, body


def test_a_json_body_sorts_by_several_keys_and_pages_from_the_url(client, hall):
    """sorting: priority descending, then due date ascending (a task without one last), then
    by id; firstResult and maxResults in the URL, as in Camunda."""
    officer, tasks = hall
    body = {"sorting": [{"sortBy": "priority", "sortOrder": "desc"}, {"sortBy": "dueDate", "sortOrder": "asc"}]}
    whole = posted_and_counted(client, tasks, body)
    assert whole == ["D", "A", "B", "E", "C"]
    assert posted_and_counted(client, tasks, body, "?firstResult=1&maxResults=2") == ["A", "B"]
    assert posted_and_counted(officer, tasks, body) == ["A", "B", "C"]
    assert posted_and_counted(officer, tasks, body, "?firstResult=2&maxResults=5") == ["C"]
    by_due = {"sorting": [{"sortBy": "dueDate", "sortOrder": "desc"}, {"sortBy": "priority", "sortOrder": "asc"}]}
    assert posted_and_counted(client, tasks, by_due) == ["C", "E", "B", "A", "D"]
    top = {"sortBy": "processInstanceId", "sortOrder": "asc",
           "sorting": [{"sortBy": "priority", "sortOrder": "asc"}]}           # sortBy first, then sorting
    by_case = sorted("ABCDE", key=lambda letter: tasks[letter]["processInstanceId"])
    assert posted_and_counted(client, tasks, top) == by_case


def test_a_json_body_is_read_with_the_readers_own_rights(hall, client):
    """POST /task shows a reader what GET /task shows them: a user of no department sees the
    task offered to them by name, an officer of another department only theirs."""
    _, tasks = hall
    wang, zjj1 = client.create_user("wang"), client.create_user("zjj1", ["zjj"])
    assert posted_and_counted(wang, tasks, {}) == ["E"]
    assert posted_and_counted(zjj1, tasks, {"processDefinitionKeyIn": ["permit", "licence"]}) == ["D"]
    assert posted_and_counted(zjj1, tasks, {"candidateGroups": ["fgw"]}) == []


def test_name_sorts_by_case_or_in_any_case(client):
    r = client.deploy(extra={f"{key}.bpmn": one_task(key).replace('name="审查"', f'name="{name}"')
                             for key, name in (("upper", "Review"), ("lower", "appeal"), ("mid", "Check"))})
    assert r.status_code == 200, r.get_json()
    for key in ("upper", "lower", "mid"):
        client.start(key)

    def names(**query):
        return [t["name"] for t in client.tasks(**query)]
    assert names(sortBy="name", sortOrder="asc") == ["Check", "Review", "appeal"]
    assert names(sortBy="nameCaseInsensitive", sortOrder="asc") == ["appeal", "Check", "Review"]
    assert names(sortBy="nameCaseInsensitive", sortOrder="desc") == ["Review", "Check", "appeal"]
    assert names(sortBy="nameCaseInsensitive", sortOrder="asc", maxResults=2) == ["appeal", "Check"]


# --- refused: Camunda's parameters that are not served, malformed values, half a sort ---------

def refused(reader, path: str, **kw) -> str:
    r = reader.post(path, **kw) if "json" in kw else reader.get(path, **kw)
    assert r.status_code == 400, (path, kw, r.status_code, r.get_json())
    body = r.get_json()
    assert body["type"] == "InvalidRequestException"
    return body["message"]


@pytest.mark.parametrize("name,value", [("caseInstanceId", "c1"), ("dueBeforeExpression", "${now()}"),
                                        ("taskVariables", "x_eq_1"),
                                        ("processDefinitionName", "Permit"), ("candidateGroupLike", "fg%"),
                                        ("withCommentAttachmentInfo", "true"), ("parentTaskId", "t1")])
def test_a_parameter_of_camundas_that_is_not_served_is_a_400_naming_it(client, name, value):
    for path in ("/engine-rest/task", "/engine-rest/task/count"):
        message = refused(client, path, query_string={name: value, "candidateGroup": "fgw"})
        assert f"parameter {name} of Camunda's task query is not supported here" in message
        body = {name: [value] if name.endswith("In") else value}
        assert name in refused(client, path, json=body)


def test_an_unserved_parameter_says_why_where_a_reason_helps_and_an_unset_one_passes(client):
    message = refused(client, "/engine-rest/task", query_string={"caseDefinitionKey": "k", "delegationState": "x"})
    assert message == ("parameter caseDefinitionKey of Camunda's task query is not supported here: "
                       "there are no CMMN cases here")
    assert refused(client, "/engine-rest/task/count", json={"orQueries": [{"name": "x"}]}) == \
        "parameter orQueries of Camunda's task query is not supported here: OR queries are not supported here"
    for unset in ({"withCommentAttachmentInfo": "false"}, {"withCommentAttachmentInfo": "False"}):
        assert client.get("/engine-rest/task", query_string=unset).status_code == 200


@pytest.mark.parametrize("name", ["dueBefore", "dueAfter", "dueDate", "followUpBefore", "followUpAfter",
                                  "followUpDate", "followUpBeforeOrNotExistent", "createdBefore", "createdAfter",
                                  "createdOn"])
def test_a_malformed_date_is_a_400_naming_its_parameter(client, name):
    message = refused(client, "/engine-rest/task", query_string={name: "26.09.2025"})
    assert message.startswith(f"{name}: cannot parse '26.09.2025' as a date")
    assert refused(client, "/engine-rest/task/count", query_string={name: "2025-13-45T10:00:00.000+0800"})
    assert refused(client, "/engine-rest/task", json={name: "tomorrow"}).startswith(f"{name}:")


def test_a_plus_sent_unencoded_in_a_date_is_explained(client):
    message = refused(client, "/engine-rest/task?dueBefore=2030-03-02T00:00:00.000+0800")
    assert "%2B" in message and message.startswith("dueBefore:")


@pytest.mark.parametrize("query", [{"sortBy": "dueDate"}, {"sortOrder": "desc"},
                                   {"sortBy": "priority", "candidateGroup": "fgw"}])
def test_sort_by_and_sort_order_come_together(client, query):
    for path in ("/engine-rest/task", "/engine-rest/task/count"):
        assert refused(client, path, query_string=query) == \
            "Only a single sorting parameter specified. sortBy and sortOrder required"
    assert refused(client, "/engine-rest/task", json=query) == \
        "Only a single sorting parameter specified. sortBy and sortOrder required"


def test_a_sort_key_of_camundas_that_is_not_served_is_a_400(client):
    for sort_by in ("caseExecutionId", "processVariable", "caseInstanceId"):
        assert "sortBy" in refused(client, "/engine-rest/task", query_string={"sortBy": sort_by, "sortOrder": "asc"})
        assert "sortBy" in refused(client, "/engine-rest/task",
                                   json={"sorting": [{"sortBy": sort_by, "sortOrder": "asc"}]})
    assert "sortOrder" in refused(client, "/engine-rest/task", json={"sorting": [{"sortBy": "priority"}]})


@pytest.mark.parametrize("query,says", [
    ({"processVariables": "amount"}, "variable query parameter has to have format KEY_OPERATOR_VALUE"),
    ({"processVariables": "my_amount_eq_1"}, "variable query parameter has to have format KEY_OPERATOR_VALUE"),
    ({"processVariables": "amount_between_1"}, "Invalid variable comparator specified: between"),
    ({"processVariables": "amount_gt_many"}, "compares numbers here"),
    ({"processVariables": "urgent_lt_true"}, "compares numbers here"),
    ({"processVariables": "due_lt_2030-03-01T09:00:00.000+0800"}, "compares a date-shaped value with Date variables"),
])
def test_a_variable_filter_that_cannot_be_read_is_a_400(client, query, says):
    assert says in refused(client, "/engine-rest/task", query_string=query)
    assert says in refused(client, "/engine-rest/task/count", query_string=query)


def test_a_typed_variable_filter_that_cannot_be_compared_is_a_400(client):
    for variable, says in (({"name": "n", "operator": "like", "value": 5}, "compares text"),
                           ({"name": "n", "operator": "gt", "value": "5"}, "compares numbers here"),
                           ({"name": "n", "operator": "eq", "value": {"a": 1}}, "must be a string"),
                           ({"name": "n", "operator": "between", "value": 1}, "operator")):
        assert says in refused(client, "/engine-rest/task", json={"processVariables": [variable]})
