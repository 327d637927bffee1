"""A handler of a multi-instance external task is told which element its task is for: the
runtime, subscribed with the variables it reads, gets the instance's element variable
from the real server and hands it to the handler."""
from __future__ import annotations

import threading

from tests.api.test_external_task_multi_instance import push_model
from tests.conftest import typed
from tests.workers.test_outcomes_on_the_server import wait
from workers import Worker

WORKER_USER = ("utility_gateway", "pw")


def test_each_push_handler_gets_its_own_utility_and_the_case_moves_on(app, client, serve):
    client.create_user(WORKER_USER[0], ["external-workers"], password=WORKER_USER[1])
    assert client.deploy(extra={"utility_push.bpmn": push_model()}).status_code == 200
    case = client.start("utility_push", typed(utilities=["water", "power", "gas"], applicantName="张三"))
    handled, lock = [], threading.Lock()

    def push(task):
        with lock:
            handled.append((task.variables["utility"], task.variables["company"]))
        return {"receiptNo": f"R-{task.variables['utility']}"}

    worker = Worker(serve(app).url + "/engine-rest", auth=WORKER_USER, worker_id="gw-1", lock_duration=5_000,
                    async_response_timeout=200)
    worker.subscribe("utility.push", variables=["utility", "company"], handler=push)
    worker.start()
    try:
        issued = wait(lambda: [t for t in client.tasks(processInstanceId=case["id"])
                               if t["taskDefinitionKey"] == "Issue"])
        assert issued, f"the pushes did not all complete; handled: {handled}"
    finally:
        worker.stop(timeout=10, now=True)
    assert sorted(handled) == [("gas", "gas-co"), ("power", "power-co"), ("water", "water-co")]
