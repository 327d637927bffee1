"""Engine errors.  Each carries the HTTP status and the Camunda exception `type` the
REST layer renders as `{"type": ..., "message": ...}` (Camunda 7's error body)."""
from __future__ import annotations


def code_for(type_: str, code: int | None = None) -> int | None:
    """Camunda 7.20+'s `code` of an error body: an engine exception's own (1 optimistic locking,
    0 the fallback; the 7.22 REST overview shows AuthorizationException with 0); none for the
    REST layer's InvalidRequestException, which is no engine exception (ExceptionHandlerHelper)."""
    if code is not None or type_ == "InvalidRequestException":
        return code
    return 1 if type_ == "OptimisticLockingException" else 0


class EngineError(Exception):
    status = 400
    type = "InvalidRequestException"
    code: int | None = None        # None: code_for(type)

    def __init__(self, message: str, **details) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def body(self) -> dict:
        body = {"type": self.type, "message": self.message, "code": code_for(self.type, self.code)}
        body.update(self.details)
        return body


class BadRequest(EngineError):
    status = 400
    type = "InvalidRequestException"


class NotFound(EngineError):
    status = 404
    type = "InvalidRequestException"


class Forbidden(EngineError):
    status = 403
    type = "AuthorizationException"


class Unauthorized(EngineError):
    status = 401
    type = "AuthenticationException"


class UnsupportedMediaType(EngineError):
    """A request body in a form the endpoint does not read (HTTP 415)."""
    status = 415
    type = "InvalidRequestException"


class Conflict(EngineError):
    """A lost race on the same instance: the caller may re-read and try again."""
    status = 409
    type = "OptimisticLockingException"
    code = 1


class OutcomeUnknown(EngineError):
    """The connection to PostgreSQL broke during COMMIT: the change may have been made or
    not, and only a read can tell (engine/db.py UnitOfWork.commit)."""
    status = 503
    type = "ProcessEngineException"


class RestException(EngineError):
    """Camunda's REST layer wraps some engine errors as `RestException` (the external-task
    API's, a BPMN error no boundary event catches)."""
    status = 400
    type = "RestException"
    code = 0


class TaskAlreadyClaimed(EngineError):
    # Camunda answers 500 here; a claim race is the caller's to resolve, so 409.
    status = 409
    type = "TaskAlreadyClaimedException"


class ModelError(EngineError):
    """The model failed while running (expression error, missing variable...).

    The command is rolled back; the message names the element and the expression."""
    status = 400
    type = "ProcessEngineException"
    code = 0


class ParseError(EngineError):
    """A deployment was refused; `details` lists the problems per resource."""
    status = 400
    type = "ParseException"


class FormInvalid(EngineError):
    status = 400
    type = "FormFieldValidationException"
