"""External-task workers: the runtime integrators write handlers for, the declarative
HTTP connectors to department systems, and the department-system sandbox."""
from .client import EngineClient, EngineError, EngineUnavailable
from .runtime import RetryPolicy, Worker
from .task import BpmnError, ExternalTask, Failure, Typed

__all__ = ["BpmnError", "EngineClient", "EngineError", "EngineUnavailable", "ExternalTask", "Failure",
           "RetryPolicy", "Typed", "Worker"]
