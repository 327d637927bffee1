"""Item configuration as data (事项配置): `.json` resources deployed beside the diagrams.

Designers keep time limits, department lists, which items allow 容缺受理 or 告知承诺
and the like in JSON files (`bpmn/items.json`) instead of Python; expressions read them
with `config("items")`.  The last deployed version of a name wins (by deployment order,
`deployment.seq`, not by deployment time, which the test clock can set back), so editing
the file and redeploying changes the rules for the steps evaluated from then on.
"""
from __future__ import annotations

import copy
import json
import threading

from sqlalchemy import select

from .errors import NotFound
from .models import Deployment, Resource

SUFFIX = ".json"
MAX_BYTES = 2 * 1024 * 1024


def check(name: str, content: bytes) -> str | None:
    """What is wrong with a config resource, or None."""
    if len(content) > MAX_BYTES:
        return f"{name}: a configuration file may be at most {MAX_BYTES // 1024} KB"
    try:
        value = json.loads(content.decode("utf-8"))
    except UnicodeDecodeError:
        return f"{name}: not UTF-8 text"
    except json.JSONDecodeError as err:
        return f"{name}: line {err.lineno}, column {err.colno}: {err.msg}"
    except RecursionError:
        return f"{name}: objects or lists are nested too deeply"
    if not isinstance(value, dict):
        return f"{name}: the top level must be a JSON object (name → settings)"
    return None


class ConfigCache:
    """Parsed config resources, by resource id (resources never change once deployed)."""

    def __init__(self) -> None:
        self._parsed: dict[str, dict] = {}
        self._lock = threading.Lock()

    def get(self, session, name: str) -> dict:
        file_name = name if name.endswith(SUFFIX) else name + SUFFIX
        resource_id = session.execute(
            select(Resource.id).join(Deployment, Deployment.id == Resource.deployment_id)
            .where(Resource.name == file_name, Resource.kind == "config")
            .order_by(Deployment.seq.desc()).limit(1)).scalar()
        if resource_id is None:
            raise NotFound(f"config({name!r}): no deployed configuration '{file_name}'; deploy it with the diagrams")
        parsed = self._parsed.get(resource_id)
        if parsed is None:
            content = session.execute(select(Resource.content).where(Resource.id == resource_id)).scalar_one()
            parsed = json.loads(content.decode("utf-8"))
            with self._lock:
                self._parsed[resource_id] = parsed
        # a copy: models merge and mutate what they read; the cached original must stay as deployed
        return copy.deepcopy(parsed)
