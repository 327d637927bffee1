"""The REST API: Camunda-7-compatible resources under /engine-rest, extensions under
/api/v1, one blueprint per resource, all in one OpenAPI document."""
from __future__ import annotations

from flask import Flask, send_from_directory
from werkzeug.routing import Rule

from . import auth, errors

API_VERSION = "7.22.0"


class _Rule(Rule):
    """A route whose URL builders (werkzeug compiles two Python functions per rule as it is
    added; only url_for calls them) are compiled when first used: the ~100 rules' builders
    were two thirds of what making an app still cost (31 -> 10 ms), at every worker's boot
    and in every test."""

    def _compile_builder(self, append_unknown: bool = True):
        compile_builder, compiled = super()._compile_builder, None

        def build(rule, *args, **kwargs):
            nonlocal compiled
            if compiled is None:
                compiled = compile_builder(append_unknown).__get__(rule, None)
            return compiled(*args, **kwargs)
        return build


SWAGGER_UI_ASSETS = "/engine-rest/swagger-ui/"        # public, as the docs page is (api/auth.py PUBLIC)


def _swagger_ui_asset(filename: str):
    """Swagger UI's scripts and style for /engine-rest/docs, from the pinned swagger-ui-bundle."""
    import swagger_ui_bundle
    return send_from_directory(swagger_ui_bundle.swagger_ui_path, filename, max_age=86400)


def register(app: Flask, test_clock: bool = False) -> errors.CamundaApi:
    app.url_rule_class = _Rule
    app.config.update(
        API_TITLE="Approval orchestration engine (Camunda 7 compatible REST)",
        API_VERSION=API_VERSION,
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/engine-rest",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="/docs",
        # served from the swagger-ui-bundle package, not a CDN: a government network is often offline
        OPENAPI_SWAGGER_UI_URL=SWAGGER_UI_ASSETS,
    )
    app.add_url_rule(f"{SWAGGER_UI_ASSETS}<path:filename>", "swagger_ui_asset", _swagger_ui_asset)
    api = errors.CamundaApi(app, spec_kwargs={"components": {"securitySchemes": {
        "basic": {"type": "http", "scheme": "basic"},
        "bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"basic": []}, {"bearer": []}]})
    from . import deployment, engine_info, history, identity, process_definition, process_instance, task, task_comment
    for blueprint in (engine_info.blp, deployment.blp, process_definition.blp, process_instance.blp, task.blp,
                      task_comment.blp, history.blp, identity.blp, identity.tokens):
        api.register_blueprint(blueprint)
    from . import calendar, legal
    api.register_blueprint(calendar.blp)
    api.register_blueprint(calendar.calendars_blp)
    api.register_blueprint(legal.blp)
    from . import external_task, filter as task_filter, incident, message, signal
    for blueprint in (external_task.blp, incident.blp, message.blp, signal.blp, task_filter.blp):
        api.register_blueprint(blueprint)
    from . import dossier
    api.register_blueprint(dossier.blp)
    if test_clock:             # never by default: moving time is for tests and demos
        from . import test_clock as clock_api
        api.register_blueprint(clock_api.blp)
    errors.register(app)
    app.before_request(auth.authenticate)
    app.after_request(_no_content)
    return api


def _no_content(response):
    """A 204 leaves with no body and no Content-Type, as Camunda's does: the Camunda
    external-task client for JavaScript parses any answer typed application/json, and
    flask-smorest's empty 204 failed it ("Unexpected end of JSON input") after the server
    had done the work, so a worker would report a completed task as failed."""
    if response.status_code == 204:
        response.set_data(b"")                      # which sets Content-Length: 0
        response.headers.pop("Content-Type", None)
        response.headers.pop("Content-Length", None)
    return response
