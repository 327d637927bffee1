// The real Camunda external-task client for JavaScript (npm camunda-external-task-client-js,
// pinned by package-lock.json) against a running server: one worker subscribes to the
// topics of tests/compat/js_client.bpmn, makes every call a worker makes, and prints a
// JSON report of what each call resolved or rejected with; tests/compat/test_camunda_js_client.py
// reads it and checks the effects through the REST API.
//
//   node tests/compat/js/exercise.mjs --base-url http://127.0.0.1:8080/engine-rest --user U --password P
//   (or CAMUNDA_URL, CAMUNDA_USER, CAMUNDA_PASSWORD; --timeout-ms, default 30000)
//
// Exit code 0 when every handler ran to its end (each call resolved or rejected: see the
// report), 1 when the time ran out first, 2 on bad arguments.
import { BasicAuthInterceptor, Client, Variables } from "camunda-external-task-client-js";

const WORKER_ID = "js-compat-worker";
const PROCESS_KEY = "js_client_compat";
const VERSION_TAG = "js-1";

function options(argv) {
  const found = {
    baseUrl: process.env.CAMUNDA_URL,
    user: process.env.CAMUNDA_USER,
    password: process.env.CAMUNDA_PASSWORD,
    timeoutMs: 30000,
  };
  const names = { "--base-url": "baseUrl", "--user": "user", "--password": "password", "--timeout-ms": "timeoutMs" };
  for (let i = 0; i < argv.length; i += 2) {
    const name = names[argv[i]];
    if (!name || argv[i + 1] === undefined) {
      console.error(`unknown or incomplete argument ${argv[i]}; use --base-url, --user, --password, --timeout-ms`);
      process.exit(2);
    }
    found[name] = argv[i + 1];
  }
  if (!found.baseUrl || !found.user || !found.password) {
    console.error("give the server's /engine-rest URL and a worker's credentials (--base-url --user --password)");
    process.exit(2);
  }
  found.timeoutMs = Number(found.timeoutMs);
  return found;
}

const opts = options(process.argv.slice(2));
const report = { calls: [], seen: { "js-register": [] }, observed: {}, errors: [], timedOut: false };
const authorization = "Basic " + Buffer.from(`${opts.user}:${opts.password}`).toString("base64");

// What the server says about a task, read over plain REST between the client's calls.
async function externalTask(id) {
  const response = await fetch(`${opts.baseUrl}/external-task/${id}`, { headers: { Authorization: authorization } });
  const body = await response.json();
  return { status: response.status, workerId: body.workerId, lockExpirationTime: body.lockExpirationTime,
           retries: body.retries, errorMessage: body.errorMessage };
}

// One client call: resolved, or rejected with the client's error (the server's answer).
async function call(topic, name, promise) {
  try {
    await promise;
    report.calls.push({ topic, call: name, resolved: true });
    return true;
  } catch (err) {
    report.calls.push({ topic, call: name, resolved: false, error: String(err && err.message ? err.message : err),
                        status: err && err.httpStatusCode });
    return false;
  }
}

const client = new Client({
  baseUrl: opts.baseUrl,
  workerId: WORKER_ID,
  interceptors: new BasicAuthInterceptor({ username: opts.user, password: opts.password }),
  maxTasks: 10,
  interval: 50,
  lockDuration: 20000,
  autoPoll: false,
});
client.on("poll:error", (err) => report.errors.push(`fetchAndLock: ${err.message}`));
client.on("handler:error", (err) => report.errors.push(`handler: ${err && err.message ? err.message : err}`));

const pending = new Set(["js-register", "js-seal", "js-tax", "js-archive", "js-notify"]);
let finish;
const allDone = new Promise((resolve) => { finish = resolve; });
function done(topic) {
  pending.delete(topic);
  if (pending.size === 0) finish();
}

const filters = { processDefinitionKey: PROCESS_KEY };

// complete with typed process variables, local variables and transient ones; the
// subscription also filters by the definition's version tag
client.subscribe("js-register", { ...filters, processDefinitionVersionTag: VERSION_TAG },
  async ({ task, taskService }) => {
    report.seen["js-register"].push({ variables: task.variables.getAll(), businessKey: task.businessKey,
                                      processDefinitionVersionTag: task.processDefinitionVersionTag });
    const variables = new Variables()
      .set("creditCode", "91320500MA1XXXXX0X")
      .set("employees", 42)
      .setTyped("registeredCapital", { type: "Long", value: 5000000000 })
      .set("shareRatio", 0.25)
      .set("approved", true)
      .set("address", { city: "苏州", zip: "215000" })
      .set("registeredAt", new Date("2025-09-26T02:00:00.000Z"))
      .setTransient("fastTrack", true)
      .setTransient("otp", "js-otp-314159");
    const local = new Variables().set("rawReceipt", "receipt-local-1");
    await call("js-register", "complete", taskService.complete(task, variables, local));
    done("js-register");
  });

// a BPMN error with variables: the error boundary event takes over
client.subscribe("js-seal", filters, async ({ task, taskService }) => {
  const variables = new Variables().set("sealReason", "name mismatch");
  await call("js-seal", "handleBpmnError",
             taskService.handleBpmnError(task, "SEAL_REFUSED", "the seal office refused", variables));
  done("js-seal");
});

// a failure with retries and a retry timeout; fetched again after it, retries 0: an incident
client.subscribe("js-tax", filters, async ({ task, taskService }) => {
  if (task.retries === null || task.retries === undefined) {
    await call("js-tax", "handleFailure(retries 1, retryTimeout 300)", taskService.handleFailure(task, {
      errorMessage: "tax bureau unavailable", errorDetails: "HTTP 503 from the tax bureau",
      retries: 1, retryTimeout: 300 }));
    report.observed.afterFirstFailure = await externalTask(task.id);
    return;                                   // the client fetches it again once the timeout passed
  }
  report.observed.refetchedRetries = task.retries;
  await call("js-tax", "handleFailure(retries 0)", taskService.handleFailure(task, {
    errorMessage: "tax bureau still unavailable", errorDetails: "HTTP 503 again", retries: 0, retryTimeout: 0 }));
  done("js-tax");
});

// a failure that names no retries: Camunda's default is 0, an incident
client.subscribe("js-notify", filters, async ({ task, taskService }) => {
  await call("js-notify", "handleFailure(no retries)",
             taskService.handleFailure(task, { errorMessage: "SMS gateway refused the number" }));
  done("js-notify");
});

// extendLock, unlock, then lock it again by id
const archive = client.subscribe("js-archive", filters, async ({ task, taskService }) => {
  report.observed.fetched = await externalTask(task.id);
  if (await call("js-archive", "extendLock", taskService.extendLock(task, 600000))) {
    report.observed.afterExtendLock = await externalTask(task.id);
  }
  archive.unsubscribe();                      // so that no poll of ours takes it once unlocked
  if (await call("js-archive", "unlock", taskService.unlock(task))) {
    report.observed.afterUnlock = await externalTask(task.id);
  }
  if (await call("js-archive", "lock", taskService.lock(task, 300000))) {
    report.observed.afterLock = await externalTask(task.id);
  }
  report.observed.archiveTaskId = task.id;
  done("js-archive");
});

const timer = setTimeout(() => { report.timedOut = true; finish(); }, opts.timeoutMs);
client.start();
await allDone;
clearTimeout(timer);
client.stop();
report.pending = [...pending];
process.stdout.write(JSON.stringify(report, null, 2) + "\n");
process.exit(report.timedOut ? 1 : 0);
