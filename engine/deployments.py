"""Deploying BPMN diagrams and Camunda Forms: validate everything, then write it all
in one transaction, or nothing.  A changed process key gets version N+1."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.exceptions import SpiffWorkflowException
from sqlalchemy import delete, func, select

from . import audit, authz, configs, event_names, legal_properties, timers
from . import forms as form_schema
from .clock import utcnow
from .db import UnitOfWork
from .definitions import (BUSINESS_KEY_REQUIRED, business_key_required, checksum, deployed_form_resource,
                          history_time_to_live, latest_definition, next_version, resource_content)
from .errors import BadRequest, Forbidden, NotFound, ParseError
from .identity import Principal
from .models import Deployment, FormDefinition, ProcessDefinition, ProcessInstance, Resource, Timer
from .parser import CAMUNDA_NS, SAFE_XML_PARSER
from .validation import NS, Problem, check_bpmn, executable_processes, spiff_problem
from .workflows import parse_resources

BPMN_SUFFIXES = (".bpmn", ".bpmn20.xml", ".bpmn2")
FORM_SUFFIXES = (".form",)


@dataclass
class Upload:
    name: str
    content: bytes

    @property
    def kind(self) -> str:
        lower = self.name.lower()
        if lower.endswith(BPMN_SUFFIXES):
            return "bpmn"
        if lower.endswith(FORM_SUFFIXES):
            return "form"
        if lower.endswith(configs.SUFFIX):
            return "config"
        return "other"


@dataclass
class DeploymentResult:
    deployment: Deployment
    process_definitions: list = field(default_factory=list)
    form_definitions: list = field(default_factory=list)
    created: bool = True


def deploy(uow: UnitOfWork, uploads: list[Upload], actor: Principal, name: str | None = None,
           source: str | None = None, duplicate_filtering: bool = False, changed_only: bool = False,
           tenant_id: str | None = None, scripts_enabled: bool = False) -> DeploymentResult:
    if not actor.may_deploy():
        raise Forbidden("deploying requires membership in group 'designers' or 'camunda-admin'",
                        userId=actor.user_id)
    if not uploads:
        raise ParseError("the deployment contains no resources; attach at least one .bpmn or .form file",
                         details={})
    names = [u.name for u in uploads]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ParseError(f"resource names must be unique within a deployment: {sorted(duplicates)}", details={})
    session = uow.session
    if duplicate_filtering or changed_only:
        previous = _previous_resources(session, name, source, tenant_id)
        changed = [u for u in uploads if previous.get(u.name) != checksum(u.content)]
        if not changed:
            last = _latest_deployment(session, name, source, tenant_id)
            if last is not None:
                return DeploymentResult(last, created=False)
        if changed_only:
            uploads = changed

    forms = _check_forms(uploads)
    bpmn = _check_bpmn(session, uploads, forms, tenant_id, scripts_enabled)
    problems = forms.problems + bpmn.problems + _check_configs(uploads)
    errors = [p for p in problems if not p.warning]
    if errors:
        raise ParseError(_summary(errors), details=_details(problems))

    # the next in order (a concurrent deployment taking the same number is a 409 to retry)
    seq = (session.execute(select(func.max(Deployment.seq))).scalar() or 0) + 1
    deployment = Deployment(id=str(uuid.uuid4()), seq=seq, name=name, source=source, tenant_id=tenant_id,
                            deployment_time=utcnow(), deployed_by=actor.user_id)
    session.add(deployment)
    resource_ids = {}
    for upload in uploads:
        resource = Resource(id=str(uuid.uuid4()), deployment_id=deployment.id, name=upload.name,
                            kind=upload.kind, checksum=checksum(upload.content), content=upload.content)
        session.add(resource)
        resource_ids[upload.name] = resource.id
    session.flush()
    result = DeploymentResult(deployment)
    for form_name, form in forms.parsed.items():
        row = FormDefinition(key=form.id, deployment_id=deployment.id, resource_id=resource_ids[form_name],
                             resource_name=form_name, tenant_id=tenant_id,
                             version=next_version(session, FormDefinition, form.id, tenant_id),
                             checksum=checksum(next(u.content for u in uploads if u.name == form_name)))
        row.id = definition_id(form.id, row.version)
        session.add(row)
        result.form_definitions.append(row)
    for info in bpmn.processes:
        row = ProcessDefinition(
            key=info["key"], name=info["name"], deployment_id=deployment.id,
            resource_id=resource_ids[info["resource"]], resource_name=info["resource"], tenant_id=tenant_id,
            version=next_version(session, ProcessDefinition, info["key"], tenant_id),
            checksum=info["checksum"], called_keys=info["called"], startable=info["startable"],
            start_form=info["start_form"], properties=info["properties"], version_tag=info["version_tag"],
            history_time_to_live=info["history_time_to_live"], description=info["description"],
            starters=info["starters"])
        row.id = definition_id(row.key, row.version)
        session.add(row)
        result.process_definitions.append(row)
    session.flush()
    for row in result.process_definitions:
        _schedule_start_timers(uow, row, bpmn.specs[row.key])
    audit.record_system(session, actor.user_id, "DeploymentCreated", {
        "deploymentId": deployment.id, "name": name, "source": source,
        "resources": [{"name": u.name, "sha256": checksum(u.content)} for u in uploads],
        "processDefinitions": [d.id for d in result.process_definitions]})
    return result


def _schedule_start_timers(uow: UnitOfWork, row: ProcessDefinition, spec) -> None:
    """A new version replaces the previous version's timer start events (as in Camunda)."""
    session = uow.session
    older = select(ProcessDefinition.id).where(ProcessDefinition.key == row.key,
                                               ProcessDefinition.tenant_id.is_not_distinct_from(row.tenant_id),
                                               ProcessDefinition.id != row.id)
    session.execute(delete(Timer).where(Timer.instance_id.is_(None), Timer.definition_id.in_(older)))
    earliest = None
    for activity_id, definition in timers.start_timers(spec):
        try:
            due, details = timers.start_timer_due(definition, uow.ctx.script_engine)
        except Exception as err:                        # noqa: BLE001 - any evaluation failure is the model's
            raise ParseError(f"ENGINE-09005 Could not parse BPMN process. Errors: {row.resource_name}: "
                             f"timer start event '{activity_id}': {err}", details={}) from err
        session.add(Timer(id=str(uuid.uuid4()), instance_id=None, definition_id=row.id, activity_id=activity_id,
                          kind=timers.kind_of(definition), due_at=due, created=utcnow(), failures=0,
                          details=details))
        earliest = due if earliest is None or due < earliest else earliest
    if earliest is not None:
        ctx = uow.ctx
        uow.after_commit.append(lambda: ctx.timer_scheduled(earliest))


def definition_id(key: str, version: int) -> str:
    """`key:version:uuid` as Camunda 7 makes it; like Camunda, just the uuid when that
    would not fit the 64-character id column (long keys)."""
    generated = str(uuid.uuid4())
    composed = f"{key}:{version}:{generated}"
    return composed if len(composed) <= 64 else generated


def _check_configs(uploads: list[Upload]) -> list[Problem]:
    problems = []
    for upload in uploads:
        if upload.kind == "config":
            message = configs.check(upload.name, upload.content)
            if message:
                problems.append(Problem(upload.name, message))
    return problems


def _summary(errors: list[Problem]) -> str:
    shown = "; ".join(str(p) for p in errors[:5])
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return f"ENGINE-09005 Could not parse BPMN process. Errors: {shown}{more}"


def _details(problems: list[Problem]) -> dict:
    details: dict = {}
    for p in problems:
        entry = details.setdefault(p.resource, {"errors": [], "warnings": []})
        entry["warnings" if p.warning else "errors"].append(p.as_camunda())
    return details


def _previous_resources(session, name, source, tenant_id) -> dict:
    """Newest checksum of each resource name among earlier deployments of this name."""
    rows = session.execute(
        select(Resource.name, Resource.checksum).join(Deployment, Deployment.id == Resource.deployment_id)
        .where(Deployment.name.is_(None) if name is None else Deployment.name == name,
               Deployment.tenant_id.is_not_distinct_from(tenant_id))
        .order_by(Deployment.seq.desc()))
    newest: dict = {}
    for resource_name, digest in rows:
        newest.setdefault(resource_name, digest)
    return newest


def _latest_deployment(session, name, source, tenant_id) -> Deployment | None:
    return session.execute(
        select(Deployment).where(Deployment.name.is_(None) if name is None else Deployment.name == name,
                                 Deployment.tenant_id.is_not_distinct_from(tenant_id))
        .order_by(Deployment.seq.desc()).limit(1)).scalar_one_or_none()


# --- forms ------------------------------------------------------------------------

@dataclass
class _FormCheck:
    parsed: dict = field(default_factory=dict)       # resource name -> FormDefinition
    problems: list = field(default_factory=list)

    @property
    def keys(self) -> set:
        return {f.id for f in self.parsed.values()}


def _check_forms(uploads: list[Upload]) -> _FormCheck:
    check = _FormCheck()
    seen: dict[str, str] = {}
    for upload in uploads:
        if upload.kind != "form":
            continue
        try:
            form = form_schema.parse_form(upload.content, upload.name)
        except form_schema.FormDefinitionError as err:
            check.problems.extend(Problem(upload.name, f"{location}: {message}", err.line, err.column)
                                  for location, message in err.problems)
            continue
        if form.id in seen:
            check.problems.append(Problem(upload.name, f"form id '{form.id}' is also used by {seen[form.id]}"))
            continue
        seen[form.id] = upload.name
        check.parsed[upload.name] = form
    return check


# --- BPMN -------------------------------------------------------------------------

@dataclass
class _BpmnCheck:
    processes: list = field(default_factory=list)
    problems: list = field(default_factory=list)
    specs: dict = field(default_factory=dict)        # process key -> parsed spec


def _check_bpmn(session, uploads, forms: _FormCheck, tenant_id, scripts_enabled) -> _BpmnCheck:
    check = _BpmnCheck()
    checked, clocks = {}, {}
    for upload in uploads:
        if upload.kind == "bpmn":
            parsed, problems = check_bpmn(upload.name, upload.content, scripts_enabled)
            check.problems.extend(problems)
            if parsed is not None:
                checked[upload.name] = parsed
                check.problems.extend(_nameless(upload.name, parsed.tree))
                problems, clocks[upload.name] = legal_properties.check_file(upload.name, parsed.tree)
                check.problems.extend(problems)
    check.problems.extend(legal_properties.check_calendars(session, clocks))
    check.problems.extend(legal_properties.check_references(
        session, {name: parsed.tree for name, parsed in checked.items()}, clocks, tenant_id))
    if not checked or any(not p.warning for p in check.problems):
        return check
    keys_here = {}
    for name, parsed in checked.items():
        for process in parsed.processes:
            key = process.get("id")
            if key in keys_here:
                check.problems.append(Problem(name, f"process id '{key}' is also defined in {keys_here[key]}",
                                              process.sourceline, None, key))
            keys_here[key] = name
    _check_form_refs(session, checked, forms, tenant_id, check)
    _check_message_starts(session, checked, tenant_id, check)
    try:
        parser, roots = _parse_with_dependencies(session, uploads, checked, tenant_id, check)
    except _Stop:
        return check
    for name, parsed in checked.items():
        for process in parsed.processes:
            key = process.get("id")
            try:
                spec = parser.get_spec(key)
                parser.get_subprocess_specs(key)
            except ValidationException as err:
                check.problems.append(spiff_problem(roots, err))
                continue
            except SpiffWorkflowException as err:
                check.problems.append(Problem(name, str(err), process.sourceline, None, key))
                continue
            try:
                info = _process_info(name, process, spec)
            except ValueError as err:       # an attribute Camunda refuses too (historyTimeToLive)
                check.problems.append(Problem(name, str(err), process.sourceline, None, key))
                continue
            keyless = _keyless_starts(name, process, info["properties"])
            if keyless:
                check.problems.extend(keyless)
                continue
            check.processes.append(info)
            check.specs[key] = spec
    return check


def _nameless(name: str, root) -> list[Problem]:
    """An executable process without an id (its key: the database refused the row, which
    read as a race to retry) and a camunda:property without a name (Camunda's Modeler
    leaves the field empty until one is typed; every start then failed)."""
    problems = [Problem(name, "a process needs an id: set the process's ID in the modeler (cases are started by it)",
                        process.sourceline) for process in executable_processes(root) if not process.get("id")]
    for prop in (prop for process in executable_processes(root) for prop in process.xpath(
            ".//bpmn:extensionElements/camunda:properties/camunda:property[not(normalize-space(@name))]",
            namespaces=NS)):
        owner = prop.getparent().getparent().getparent()         # property < properties < extensionElements < owner
        problems.append(Problem(name, "camunda:property needs a name: give it one in the modeler's Extension "
                                      "properties, or remove it", prop.sourceline, None, owner.get("id")))
    return problems


class _Stop(Exception):
    pass


def _parse_with_dependencies(session, uploads, checked, tenant_id, check):
    """Parse this deployment plus the deployed processes its call activities need."""
    files = {name: parsed.tree for name, parsed in checked.items()}
    resources = [(u.name, u.content) for u in uploads if u.name in checked]
    defined = {p.get("id") for parsed in checked.values() for p in parsed.tree.iterfind("bpmn:process", NS)}
    pending = {c.get("calledElement") for parsed in checked.values()
               for c in parsed.tree.iterfind(".//bpmn:callActivity", NS)}
    while pending - defined:
        key = sorted(pending - defined)[0]
        try:
            row = latest_definition(session, key, tenant_id)
        except NotFound:
            where = next((name, c) for name, parsed in checked.items()
                         for c in parsed.tree.iterfind(".//bpmn:callActivity", NS) if c.get("calledElement") == key)
            check.problems.append(Problem(where[0], f"call activity calls process '{key}', which is neither in this "
                                          "deployment nor deployed", where[1].sourceline, None, where[1].get("id")))
            defined.add(key)
            continue
        name, content = resource_content(session, row.resource_id)
        resources.append((f"{name} (deployed, {row.id})", content))
        tree = etree.fromstring(content, SAFE_XML_PARSER)
        for process in tree.iterfind("bpmn:process", NS):
            defined.add(process.get("id"))
        pending |= {c.get("calledElement") for c in tree.iterfind(".//bpmn:callActivity", NS)}
    if any(not p.warning for p in check.problems):
        raise _Stop()
    try:
        return parse_resources(resources), files
    except ValidationException as err:
        check.problems.append(spiff_problem(files, err))
        raise _Stop() from err


def _check_message_starts(session, checked, tenant_id, check) -> None:
    """A message may start one process only: POST /message could not tell which to start
    (Camunda 7 refuses such a deployment too).  A new version of a key replaces its
    older versions' message start events."""
    keys_here = {process.get("id") for parsed in checked.values() for process in parsed.processes}
    tenant = tenant_id if tenant_id is not None else event_names.NO_TENANT
    started_here: dict[str, str] = {}                 # message name -> key in this deployment
    for name, parsed in checked.items():
        for process in parsed.processes:
            key = process.get("id")
            for event, message in event_names.start_events(parsed.tree, process, "message"):
                other = _other_message_start(session, message, key, started_here, keys_here, tenant)
                if other:
                    check.problems.append(Problem(
                        name, f"process '{key}' starts on message '{message}', which process {other} starts on "
                              "already: a message starts one process only (POST /message could not tell which); "
                              "rename the message, or, if this process replaces that one, give it that one's id "
                              "(a new version takes over its message)",
                        event.sourceline, None, event.get("id")))


def _other_message_start(session, message: str, key: str, started_here: dict, keys_here: set, tenant) -> str | None:
    first = started_here.setdefault(message, key)
    if first != key:
        return f"'{first}' (in this deployment)"
    deployed = [d.key for d in event_names.latest_starting(session, "message", message, tenant, active_only=False)
                if d.key not in keys_here]
    return f"'{deployed[0]}' (deployed)" if deployed else None


FORM_BINDINGS = ("latest", "deployment", "version")


def _check_form_refs(session, checked, forms: _FormCheck, tenant_id, check) -> None:
    """Every camunda:formRef (user tasks, start events) must find its form the way its
    binding looks it up, and a camunda:formKey naming a form of the deployment
    (`camunda-forms:deployment:NAME`) that form, or every completion would be refused."""
    for name, parsed in checked.items():
        for element in parsed.tree.iter():
            if not isinstance(element.tag, str):
                continue
            form_key = element.get(f"{{{CAMUNDA_NS}}}formKey")
            resource = deployed_form_resource(form_key)
            if resource is not None and resource not in forms.parsed:
                check.problems.append(Problem(name, f"camunda:formKey '{form_key}' names resource '{resource}', "
                                                    "which is no Camunda Form (.form) of this deployment; deploy "
                                                    "the form with the diagram", element.sourceline, None,
                                              element.get("id")))
            if element.get(f"{{{CAMUNDA_NS}}}formRef") is None:
                continue
            problem = _form_ref_problem(session, element, forms, tenant_id)
            if problem:
                check.problems.append(Problem(name, problem, element.sourceline, None, element.get("id")))


def _form_ref_problem(session, element, forms: _FormCheck, tenant_id) -> str | None:
    key = element.get(f"{{{CAMUNDA_NS}}}formRef")
    binding = element.get(f"{{{CAMUNDA_NS}}}formRefBinding") or "latest"
    if binding not in FORM_BINDINGS:
        return (f"camunda:formRefBinding {binding!r} of camunda:formRef '{key}' is not one of "
                f"{', '.join(FORM_BINDINGS)}")
    here = key in forms.keys
    deployed = select(FormDefinition.version).where(FormDefinition.key == key,
                                                    FormDefinition.tenant_id.is_not_distinct_from(tenant_id))
    if binding == "version":
        raw = element.get(f"{{{CAMUNDA_NS}}}formRefVersion")
        try:
            version = int(raw)
        except (TypeError, ValueError):
            return (f"camunda:formRef '{key}' with binding 'version' needs camunda:formRefVersion, a whole number "
                    f"(got {raw!r})")
        upcoming = next_version(session, FormDefinition, key, tenant_id)
        if here and version == upcoming:
            return None
        if session.execute(deployed.where(FormDefinition.version == version).limit(1)).first() is None:
            newest = f"the newest deployed is {upcoming - 1}" if upcoming > 1 else "none is deployed"
            brought = f", this deployment brings {upcoming}" if here else ""
            return (f"camunda:formRef '{key}' binds version {version} (camunda:formRefVersion), which does not "
                    f"exist ({newest}{brought}); pick an existing version or bind to 'latest'")
        return None
    if here:
        return None
    if binding == "deployment":
        return f"camunda:formRef '{key}' with binding 'deployment' needs the form in this deployment"
    if session.execute(deployed.limit(1)).first() is None:
        return f"camunda:formRef '{key}' names no form in this deployment and none deployed; add the .form file " \
               "to the deployment"
    return None


# start events that start a case with no business key to give (a timer, POST /signal)
_KEYLESS_STARTS = ("timerEventDefinition", "signalEventDefinition", "conditionalEventDefinition")


def _keyless_starts(resource: str, process, properties: dict) -> list[Problem]:
    """A process that needs a business key (businessKeyRequired, read by
    _process_info) started by a timer or a signal would fail at every such start."""
    if not business_key_required(properties):
        return []
    return [Problem(resource, f"start event '{start.get('id')}' starts cases without a business key "
                    f"({kind.replace('EventDefinition', '')} start), but the process's camunda:property "
                    f"{BUSINESS_KEY_REQUIRED} is true: start it by request or message, or drop the property",
                    start.sourceline, None, start.get("id"))
            for start in process.iterfind("bpmn:startEvent", NS)
            for kind in _KEYLESS_STARTS if start.find(f"bpmn:{kind}", NS) is not None]


def _process_info(resource: str, process, spec) -> dict:
    start_form = None
    for start in process.iterfind("bpmn:startEvent", NS):
        ref = start.get(f"{{{CAMUNDA_NS}}}formRef")
        key = start.get(f"{{{CAMUNDA_NS}}}formKey")
        if ref:
            start_form = {"formRef": ref, "binding": start.get(f"{{{CAMUNDA_NS}}}formRefBinding") or "latest",
                          "version": start.get(f"{{{CAMUNDA_NS}}}formRefVersion")}
        elif key:
            start_form = {"formKey": key}
    props = {p.get("name"): p.get("value") for p in
             process.xpath("./bpmn:extensionElements/camunda:properties/camunda:property[@name]", namespaces=NS)}
    business_key_required(props)                    # a ValueError for a value other than true or false
    doc = process.find("bpmn:documentation", NS)
    return {
        "key": process.get("id"), "name": process.get("name"), "resource": resource,
        "checksum": checksum(etree.tostring(process, method="c14n")),
        "called": sorted({c.get("calledElement") for c in process.iterfind(".//bpmn:callActivity", NS)}),
        "startable": process.get(f"{{{CAMUNDA_NS}}}isStartableInTasklist", "true") != "false",
        "start_form": start_form, "properties": props, "starters": authz.starters(process, CAMUNDA_NS),
        "version_tag": process.get(f"{{{CAMUNDA_NS}}}versionTag"),
        "history_time_to_live": history_time_to_live(process.get(f"{{{CAMUNDA_NS}}}historyTimeToLive")),
        "description": doc.text if doc is not None else None,
    }


# --- deleting ---------------------------------------------------------------------

def delete_deployment(uow: UnitOfWork, deployment_id: str, actor: Principal, cascade: bool = False) -> None:
    if not actor.may_deploy():
        raise Forbidden("deleting a deployment requires membership in group 'designers' or 'camunda-admin'")
    session = uow.session
    deployment = session.get(Deployment, deployment_id)
    if deployment is None:
        raise NotFound(f"no deployment with id '{deployment_id}'")
    definition_ids = session.execute(select(ProcessDefinition.id).where(
        ProcessDefinition.deployment_id == deployment_id)).scalars().all()
    removed: list[str] = []
    if definition_ids:
        session.execute(delete(Timer).where(Timer.instance_id.is_(None), Timer.definition_id.in_(definition_ids)))
        running = session.execute(select(ProcessInstance.id).where(
            ProcessInstance.definition_id.in_(definition_ids))).first()
        if running is not None and not cascade:
            raise BadRequest(
                f"deployment '{deployment_id}' has process instances; delete with cascade=true to remove them too")
        if cascade:
            for row in session.execute(select(ProcessInstance).where(
                    ProcessInstance.definition_id.in_(definition_ids))).scalars():
                removed.append(row.id)
                session.delete(row)
            session.flush()
    # the cases' own chains lose their head rows: this event is what `audit verify` accepts instead
    audit.record_system(session, actor.user_id, "DeploymentDeleted", {
        "deploymentId": deployment_id, "name": deployment.name, "cascade": cascade,
        "processDefinitions": list(definition_ids), "processInstanceIds": removed})
    session.delete(deployment)
