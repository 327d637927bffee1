"""GET /version and GET /engine."""

from . import API_VERSION, schemas
from .blueprint import Blueprint

blp = Blueprint("engine", __name__, url_prefix="/engine-rest", description="Server and engine")


@blp.route("/version")
@blp.response(200, schemas.VersionInfo)
def version():
    """The Camunda REST API version this server speaks."""
    return {"version": API_VERSION}


@blp.route("/engine")
@blp.response(200, schemas.EngineInfo(many=True))
def engines():
    """The process engines on this server (one, named `default`)."""
    return [{"name": "default"}]
