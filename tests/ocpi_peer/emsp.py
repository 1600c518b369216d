"""OCPI 2.2.1 eMSP test peer for voltgate's integration tests.

This file owns the whole peer: an independent eMSP (country NL, party EMS)
built on the PyPI library `extrawest-ocpi` (import name `py_ocpi`), run as

    python emsp.py --port PORT        # PORT 0 picks a free port

It binds 127.0.0.1 only, keeps every bit of state in memory, and prints one
line `READY http://127.0.0.1:PORT` on stdout once it serves (logs go to
stderr).

* OCPI side (served by the library's own FastAPI routers, so the library's
  pydantic models validate what the CPO sends):
    GET  /ocpi/versions, GET /ocpi/2.2.1/details
    /ocpi/emsp/2.2.1/credentials   POST/PUT/GET/DELETE (CPO-initiated registration)
    /ocpi/emsp/2.2.1/locations     PUT/PATCH/GET location, EVSE, connector
    /ocpi/emsp/2.2.1/sessions      PUT/PATCH/GET
    /ocpi/emsp/2.2.1/cdrs          POST, GET /{id}
    /ocpi/emsp/2.2.1/tariffs       PUT/GET/DELETE
    /ocpi/emsp/2.2.1/tokens        GET (sender list), POST /{uid}/authorize
    /ocpi/emsp/2.2.1/commands/{uid}  POST CommandResult (our response_url)
  `OcpiPeerMiddleware` wraps the library app: it records every /ocpi request,
  answers for the library while the peer is "down", and corrects the few
  places where the library departs from OCPI 2.2.1 (listed in the README).
* Test-control side: plain JSON under /control (no auth, no envelope). The
  outgoing calls (registration, token push, commands, pulls) are made with
  httpx, the library having no eMSP client; their payloads are checked with
  the library's schema classes.
"""

import argparse
import asyncio
import base64
import binascii
import contextvars
import copy
import json
import os
import re
import secrets
import socket
import sys
import threading
import uuid
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any, Optional
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

COUNTRY_CODE = "NL"
PARTY_ID = "EMS"
BUSINESS_NAME = "Voltgate Test eMSP"
HOST = "127.0.0.1"
OCPI_VERSION = "2.2.1"


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="OCPI 2.2.1 eMSP test peer")
    parser.add_argument("--port", type=int, required=True, help="0 = any free port")
    parser.add_argument("--verbose", action="store_true", help="library INFO logs on stderr")
    parser.add_argument(
        "--exit-with-stdin",
        action="store_true",
        help="exit when stdin reaches EOF (spawn with a piped stdin so the peer dies with its test)",
    )
    return parser.parse_args()


# The library reads its settings (host, protocol, party) from the environment
# when it is imported and bakes them into the URLs it advertises, so the port
# is bound and the environment set before `py_ocpi` is imported.
ARGS = _parse_args()
LISTEN = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
LISTEN.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
LISTEN.bind((HOST, ARGS.port))
PORT = LISTEN.getsockname()[1]
BASE = f"http://{HOST}:{PORT}"
os.environ.update(
    {
        "OCPI_HOST": f"{HOST}:{PORT}",
        "PROTOCOL": "http",
        "OCPI_PREFIX": "ocpi",
        "COUNTRY_CODE": COUNTRY_CODE,
        "PARTY_ID": PARTY_ID,
        "TRAILING_SLASH": "false",
        "ENVIRONMENT": "production",
        "NO_AUTH": "false",
        "PROJECT_NAME": "voltgate-ocpi-emsp-peer",
    }
)

import httpx  # noqa: E402
import uvicorn  # noqa: E402
from fastapi import APIRouter, Request  # noqa: E402
from fastapi.responses import JSONResponse  # noqa: E402
from pydantic import ValidationError  # noqa: E402

from py_ocpi import get_application  # noqa: E402
from py_ocpi.core.adapter import BaseAdapter  # noqa: E402
from py_ocpi.core.authentication.authenticator import Authenticator  # noqa: E402
from py_ocpi.core.config import logger as library_logger  # noqa: E402
from py_ocpi.core.crud import Crud  # noqa: E402
from py_ocpi.core.enums import Action, ModuleID, RoleEnum  # noqa: E402
from py_ocpi.core.schemas import OCPIResponse  # noqa: E402
from py_ocpi.modules.cdrs.v_2_2_1.schemas import Cdr  # noqa: E402
from py_ocpi.modules.commands.v_2_2_1 import schemas as command_schemas  # noqa: E402
from py_ocpi.modules.credentials.v_2_2_1.api import emsp as library_credentials_api  # noqa: E402
from py_ocpi.modules.credentials.v_2_2_1.schemas import Credentials  # noqa: E402
from py_ocpi.modules.locations.v_2_2_1.schemas import EVSE, Connector, Location  # noqa: E402
from py_ocpi.modules.sessions.v_2_2_1.schemas import Session  # noqa: E402
from py_ocpi.modules.tariffs.v_2_2_1.schemas import Tariff  # noqa: E402
from py_ocpi.modules.tokens.v_2_2_1.schemas import AuthorizationInfo, Token  # noqa: E402
from py_ocpi.modules.versions.enums import VersionNumber  # noqa: E402
from py_ocpi.modules.versions.schemas import Version  # noqa: E402
from py_ocpi.modules.versions.v_2_2_1.schemas import VersionDetail  # noqa: E402

OCPI_ROOT = f"{BASE}/ocpi"
VERSIONS_URL = f"{OCPI_ROOT}/versions"
DETAILS_URL = f"{OCPI_ROOT}/{OCPI_VERSION}/details"
MODULE_ROOT = f"{OCPI_ROOT}/emsp/{OCPI_VERSION}"
ALLOWED_VALUES = {"ALLOWED", "BLOCKED", "EXPIRED", "NO_CREDIT", "NOT_ALLOWED"}
COMMAND_SCHEMAS = {
    "START_SESSION": command_schemas.StartSession,
    "STOP_SESSION": command_schemas.StopSession,
    "RESERVE_NOW": command_schemas.ReserveNow,
    "CANCEL_RESERVATION": command_schemas.CancelReservation,
    "UNLOCK_CONNECTOR": command_schemas.UnlockConnector,
}

# The request being handled, set by the middleware, so the CRUD layer can see
# the raw (case-preserved) body the library has already normalised.
CURRENT = contextvars.ContextVar("current_record", default=None)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def b64(token: str) -> str:
    return base64.b64encode(token.encode()).decode()


def new_token() -> str:
    return secrets.token_urlsafe(24)  # 32 characters, within OCPI's string(64)


def lower_key(*parts: Any) -> tuple:
    return tuple(str(p).lower() for p in parts)


def error_list(exc: ValidationError) -> list:
    return json.loads(exc.json())


# --------------------------------------------------------------------------
# In-memory state
# --------------------------------------------------------------------------


class PeerState:
    def __init__(self) -> None:
        self.token_a: list[str] = []  # TOKEN_As a CPO may register with
        self.accepted: list[str] = []  # tokens we issued that the CPO uses to call us
        self.cpo_token: Optional[str] = None  # the token we use to call the CPO
        self.cpo_versions_url: Optional[str] = None
        self.cpo_details_url: Optional[str] = None
        self.cpo_endpoints: list[dict] = []
        self.cpo_roles: list[dict] = []
        self.registered_via: Optional[str] = None  # "emsp" (we initiated) or "cpo"
        self.received: list[dict] = []
        self.sent: list[dict] = []
        self.down_status: Optional[int] = None
        self.objects: dict[str, dict] = {m: {} for m in ("locations", "sessions", "cdrs", "tariffs")}
        self.tokens: dict[tuple, dict] = {}  # (uid, type) lower-cased -> raw token
        self.auth_rules: dict[str, dict] = {}  # uid lower-cased -> rule
        self.commands: dict[str, dict] = {}  # response_url uid -> command record

    def our_credentials(self, token: str) -> dict:
        return {
            "token": token,
            "url": VERSIONS_URL,
            "roles": [
                {
                    "role": "EMSP",
                    "business_details": {"name": BUSINESS_NAME},
                    "party_id": PARTY_ID,
                    "country_code": COUNTRY_CODE,
                }
            ],
        }

    def forget_cpo(self) -> None:
        self.cpo_token = None
        self.cpo_versions_url = None
        self.cpo_details_url = None
        self.cpo_endpoints = []
        self.cpo_roles = []
        self.registered_via = None

    def known_tokens(self) -> set:
        return set(self.token_a) | set(self.accepted)


STATE = PeerState()


# --------------------------------------------------------------------------
# Library plug-ins: authenticator, adapter, CRUD
# --------------------------------------------------------------------------


class PeerAuthenticator(Authenticator):
    """Token A: registration tokens from /control/token-a. Token C: tokens we issued."""

    @classmethod
    async def get_valid_token_c(cls) -> list:
        return list(STATE.accepted)

    @classmethod
    async def get_valid_token_a(cls) -> list:
        return list(STATE.token_a)


class Preserved:
    """A library schema instance that serialises back to the dict it was
    validated from: the library's CiString lower-cases identifiers, and what
    we send out (our credentials, our tokens) keeps the case we gave it."""

    def __init__(self, model: Any, raw: dict) -> None:
        self._model = model
        self._raw = raw

    def dict(self, **_: Any) -> dict:
        return copy.deepcopy(self._raw)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._model, name)


class PeerAdapter(BaseAdapter):
    @classmethod
    def credentials_adapter(cls, data: dict, version=VersionNumber.v_2_2_1):
        return Preserved(Credentials(**data), data)

    @classmethod
    def token_adapter(cls, data: dict, version=VersionNumber.v_2_2_1):
        return Preserved(Token(**data), data)

    @classmethod
    def authorization_adapter(cls, data: dict, version=VersionNumber.v_2_2_1):
        return Preserved(AuthorizationInfo(**data), data)


def _as_aware(value: Any) -> Optional[datetime]:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


class PeerCrud(Crud):
    """The library's storage interface, backed by PeerState."""

    @classmethod
    def _object_key(cls, module: str, obj_id: Any, kwargs: dict, data: Optional[dict] = None) -> tuple:
        if module == "cdrs":
            return lower_key(obj_id)
        data = data or {}
        return lower_key(
            kwargs.get("country_code") or data.get("country_code"),
            kwargs.get("party_id") or data.get("party_id"),
            obj_id,
        )

    @classmethod
    async def get(cls, module, role, id, *args, **kwargs):
        if module == ModuleID.credentials_and_registration:
            return STATE.our_credentials(id) if id in STATE.accepted else None
        if module == ModuleID.tokens:
            return cls._token_for(str(id), kwargs.get("token_type"))
        store = STATE.objects.get(module.value)
        if store is None:
            return None
        return store.get(cls._object_key(module.value, id, kwargs))

    @classmethod
    def _token_for(cls, uid: str, token_type: Any) -> Optional[dict]:
        ttype = getattr(token_type, "value", token_type) or "RFID"
        token = STATE.tokens.get(lower_key(uid, ttype))
        if token is None and uid.lower() in STATE.auth_rules:
            # A uid the test configured an answer for but never stored.
            token = default_token({"uid": uid, "type": ttype, "whitelist": "NEVER"})
        return token

    @classmethod
    async def list(cls, module, role, filters, *args, **kwargs):
        if module != ModuleID.tokens:
            return [], 0, True
        date_from, date_to = _as_aware(filters.get("date_from")), _as_aware(filters.get("date_to"))
        items = []
        for token in STATE.tokens.values():
            updated = _as_aware(token["last_updated"])
            if date_from and updated < date_from:
                continue
            if date_to and updated >= date_to:
                continue
            items.append(token)
        items.sort(key=lambda t: (_as_aware(t["last_updated"]), t["uid"]))
        offset, limit = max(filters["offset"], 0), max(filters["limit"], 0)
        page = items[offset : offset + limit]
        return page, len(items), offset + limit >= len(items)

    @classmethod
    async def create(cls, module, role, data, *args, **kwargs):
        if module == ModuleID.credentials_and_registration:
            # POST by the CPO with a TOKEN_A; the library has already fetched
            # the CPO's versions and details with the token it sent.
            return cls._register_cpo(data, used_token=kwargs.get("auth_token"), via="cpo")
        store = STATE.objects[module.value]
        store[cls._object_key(module.value, data["id"], kwargs, data)] = data
        return data

    @classmethod
    async def update(cls, module, role, data, id=None, *args, **kwargs):
        if module == ModuleID.credentials_and_registration:
            # PUT by the CPO: new CPO token and endpoints, new token for it.
            return cls._register_cpo(data, used_token=kwargs.get("auth_token"), via=STATE.registered_via or "cpo")
        if module == ModuleID.commands:
            # A CommandResult POSTed to one of our response_urls.
            record = CURRENT.get() or {}
            raw = record.get("body") if isinstance(record.get("body"), dict) else data
            entry = STATE.commands.setdefault(str(id), {"command": None, "response_url": None, "unknown": True})
            entry.setdefault("results", []).append(raw)
            return data
        store = STATE.objects[module.value]
        store[cls._object_key(module.value, id, kwargs, data)] = data
        return data

    @classmethod
    def _register_cpo(cls, data: dict, used_token: Optional[str], via: str) -> dict:
        creds, details = data["credentials"], data["endpoints"]
        record = CURRENT.get()
        raw = record.get("body") if record and isinstance(record.get("body"), dict) else creds
        STATE.cpo_token = creds["token"]
        STATE.cpo_versions_url = creds["url"]
        STATE.cpo_roles = raw.get("roles", creds.get("roles", []))
        STATE.cpo_details_url = None
        STATE.cpo_endpoints = details.get("endpoints", []) if isinstance(details, dict) else []
        STATE.registered_via = via
        if used_token in STATE.token_a:
            STATE.token_a.remove(used_token)  # a TOKEN_A is good for one registration
        ours = new_token()
        STATE.accepted = [ours]
        return STATE.our_credentials(ours)

    @classmethod
    async def delete(cls, module, role, id, *args, **kwargs):
        if module == ModuleID.credentials_and_registration:
            STATE.accepted = [t for t in STATE.accepted if t != id]
            STATE.forget_cpo()
            return None
        store = STATE.objects.get(module.value, {})
        store.pop(cls._object_key(module.value, id, kwargs), None)
        return None

    @classmethod
    async def do(cls, module, role, action, *args, data=None, **kwargs):
        if module != ModuleID.tokens or action != Action.authorize_token:
            return None
        uid = str(data["token_uid"])
        token = cls._token_for(uid, data.get("token_type"))
        rule = STATE.auth_rules.get(uid.lower(), {})
        if rule.get("delay_ms"):
            await asyncio.sleep(rule["delay_ms"] / 1000)
        allowed = rule.get("allowed") or ("ALLOWED" if token.get("valid", True) else "BLOCKED")
        info: dict = {"allowed": allowed, "token": token}
        record = CURRENT.get()
        raw_body = record.get("body") if record else None
        if "location" in rule:
            if rule["location"] is not None:
                info["location"] = rule["location"]
        elif allowed == "ALLOWED" and isinstance(raw_body, dict) and raw_body.get("location_id"):
            info["location"] = raw_body  # echo the LocationReferences asked about
        info["authorization_reference"] = rule.get("authorization_reference") or uuid.uuid4().hex
        if rule.get("info"):
            info["info"] = rule["info"]
        return info


def default_token(given: dict) -> dict:
    """A full OCPI Token from the fields a test gave (uid at least)."""
    uid = str(given.get("uid", ""))
    token = {
        "country_code": COUNTRY_CODE,
        "party_id": PARTY_ID,
        "uid": uid,
        "type": "RFID",
        "contract_id": f"{COUNTRY_CODE}-{PARTY_ID}-C{uid}"[:36],
        "issuer": BUSINESS_NAME,
        "valid": True,
        "whitelist": "ALLOWED",
        "last_updated": datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }
    token.update(given)
    return token


# --------------------------------------------------------------------------
# Outgoing OCPI calls (httpx)
# --------------------------------------------------------------------------


async def _add_request_ids(request: httpx.Request) -> None:
    request.headers.setdefault("X-Request-ID", str(uuid.uuid4()))
    request.headers.setdefault("X-Correlation-ID", str(uuid.uuid4()))


async def _log_response(response: httpx.Response) -> None:
    STATE.sent.append(
        {
            "at": now_iso(),
            "method": response.request.method,
            "url": str(response.request.url),
            "x_request_id": response.request.headers.get("X-Request-ID"),
            "status": response.status_code,
        }
    )


class OcpiAsyncClient(httpx.AsyncClient):
    """httpx client adding X-Request-ID / X-Correlation-ID to every request,
    ignoring proxy variables, and logging the exchange in STATE.sent."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("timeout", 10.0)
        kwargs.setdefault("trust_env", False)
        kwargs.setdefault("event_hooks", {"request": [_add_request_ids], "response": [_log_response]})
        super().__init__(*args, **kwargs)


# The library's credentials handler fetches the CPO's versions and details
# with a bare `httpx.AsyncClient()`; give it ours so those calls carry the
# OCPI 2.2.1 request-id headers too.
library_credentials_api.httpx = SimpleNamespace(AsyncClient=OcpiAsyncClient)

CLIENT: Optional[OcpiAsyncClient] = None


class ControlError(Exception):
    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.extra = extra


async def ocpi_call(method: str, url: str, token: Optional[str], body: Any = None) -> dict:
    """One OCPI request; returns status, headers and the parsed body."""
    headers = {"Authorization": f"Token {b64(token)}"} if token else {}
    kwargs: dict = {"headers": headers}
    if body is not None:
        kwargs["json"] = body
    try:
        response = await CLIENT.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        raise ControlError(f"{method} {url} failed: {type(exc).__name__}: {exc}")
    try:
        parsed = response.json()
    except ValueError:
        parsed = response.text
    return {"status": response.status_code, "headers": dict(response.headers), "body": parsed, "url": url}


def ocpi_success(reply: dict) -> bool:
    body = reply.get("body")
    return reply["status"] == 200 and isinstance(body, dict) and body.get("status_code") == 1000


def envelope_errors(body: Any) -> Optional[list]:
    if not isinstance(body, dict):
        return [{"msg": "response is not a JSON object"}]
    candidate = dict(body)
    if candidate.get("data") is None:
        candidate["data"] = []
    try:
        OCPIResponse(**candidate)
    except ValidationError as exc:
        return error_list(exc)
    return None


def schema_errors(schema: Any, data: Any) -> Optional[list]:
    if not isinstance(data, dict):
        return [{"msg": f"expected a {schema.__name__} object"}]
    try:
        schema(**data)
    except ValidationError as exc:
        return error_list(exc)
    return None


async def discover(versions_url: str, token: str) -> tuple:
    """GET the CPO's versions and the 2.2.1 details; returns (details_url, endpoints)."""
    versions = await ocpi_call("GET", versions_url, token)
    if not ocpi_success(versions):
        raise ControlError("GET versions did not succeed", cpo_response=versions)
    data = versions["body"].get("data")
    try:
        listed = [Version(**v) for v in data]
    except (TypeError, ValidationError) as exc:
        raise ControlError(f"versions do not validate: {exc}", cpo_response=versions)
    details_url = next((v.url for v in listed if v.version == VersionNumber.v_2_2_1), None)
    if not details_url:
        raise ControlError("CPO does not offer OCPI 2.2.1", cpo_response=versions)
    details = await ocpi_call("GET", str(details_url), token)
    if not ocpi_success(details):
        raise ControlError("GET version details did not succeed", cpo_response=details)
    errors = schema_errors(VersionDetail, details["body"].get("data"))
    if errors:
        raise ControlError("version details do not validate", validation_errors=errors, cpo_response=details)
    return str(details_url), details["body"]["data"]["endpoints"]


def cpo_endpoint(module: str, role: Optional[str]) -> str:
    matching = [e for e in STATE.cpo_endpoints if e.get("identifier") == module]
    preferred = [e for e in matching if role is None or e.get("role") == role]
    chosen = (preferred or matching or [None])[0]
    if not chosen:
        raise ControlError(f"the CPO has no '{module}' endpoint", cpo_endpoints=STATE.cpo_endpoints)
    return chosen["url"]


def join_url(base: str, *segments: str) -> str:
    return base.rstrip("/") + "".join("/" + quote(str(s), safe="") for s in segments)


def require_registration() -> None:
    if not STATE.cpo_token:
        raise ControlError("not registered with a CPO")


# --------------------------------------------------------------------------
# Test-control API
# --------------------------------------------------------------------------

control = APIRouter(prefix="/control")


def ok(**payload: Any) -> JSONResponse:
    return JSONResponse({"ok": True, **payload})


def failed(message: str, http_status: int = 200, **payload: Any) -> JSONResponse:
    return JSONResponse({"ok": False, "error": message, **payload}, status_code=http_status)


async def json_body(request: Request) -> dict:
    raw = await request.body()
    if not raw.strip():
        return {}
    body = json.loads(raw)
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
    return body


def control_route(method: str, path: str):
    """Register a control handler; ControlError and bad input become {"ok": false}."""

    def wrap(handler):
        async def endpoint(request: Request):
            try:
                body = await json_body(request) if method == "POST" else {}
            except ValueError as exc:
                return failed(f"bad JSON body: {exc}", http_status=400)
            try:
                return await handler(request, body)
            except ControlError as exc:
                return failed(str(exc), **exc.extra)
            except (KeyError, TypeError, ValueError) as exc:
                return failed(f"bad control request: {type(exc).__name__}: {exc}", http_status=400)

        control.add_api_route(path, endpoint, methods=[method], name=handler.__name__)
        return handler

    return wrap


@control_route("POST", "/token-a")
async def set_token_a(request: Request, body: dict):
    token = body["token"]
    if token not in STATE.token_a:
        STATE.token_a.append(token)
    return ok(token_a=STATE.token_a, versions_url=VERSIONS_URL)


@control_route("POST", "/register")
async def register(request: Request, body: dict):
    versions_url, token_a = body["versions_url"], body["token"]
    details_url, endpoints = await discover(versions_url, token_a)
    credentials_url = next((e["url"] for e in endpoints if e.get("identifier") == "credentials"), None)
    if not credentials_url:
        raise ControlError("the CPO has no credentials endpoint", endpoints=endpoints)
    ours = new_token()
    STATE.accepted.append(ours)  # the CPO calls our versions with it while handling the POST
    reply = await ocpi_call("POST", credentials_url, token_a, STATE.our_credentials(ours))
    data = reply["body"].get("data") if isinstance(reply["body"], dict) else None
    errors = schema_errors(Credentials, data) if ocpi_success(reply) else None
    if not ocpi_success(reply) or errors:
        STATE.accepted.remove(ours)
        return failed("POST credentials did not succeed", cpo_response=reply, validation_errors=errors)
    STATE.cpo_token = data["token"]
    STATE.cpo_versions_url = data["url"]
    STATE.cpo_roles = data.get("roles", [])
    STATE.cpo_details_url = details_url
    STATE.cpo_endpoints = endpoints
    STATE.registered_via = "emsp"
    STATE.accepted = [ours]
    return ok(cpo_token=STATE.cpo_token, our_token=ours, endpoints=endpoints, cpo_credentials=data, cpo_response=reply)


@control_route("POST", "/credentials-put")
async def credentials_put(request: Request, body: dict):
    require_registration()
    details_url, endpoints = await discover(STATE.cpo_versions_url, STATE.cpo_token)
    STATE.cpo_details_url, STATE.cpo_endpoints = details_url, endpoints
    url = cpo_endpoint("credentials", None)
    ours = new_token()
    STATE.accepted.append(ours)
    reply = await ocpi_call("PUT", url, STATE.cpo_token, STATE.our_credentials(ours))
    data = reply["body"].get("data") if isinstance(reply["body"], dict) else None
    errors = schema_errors(Credentials, data) if ocpi_success(reply) else None
    if not ocpi_success(reply) or errors:
        STATE.accepted.remove(ours)
        return failed(
            "PUT credentials did not succeed",
            status=reply["status"],
            body=reply["body"],
            validation_errors=errors,
        )
    STATE.cpo_token = data["token"]
    STATE.cpo_versions_url = data["url"]
    STATE.cpo_roles = data.get("roles", [])
    STATE.accepted = [ours]
    return ok(status=reply["status"], body=reply["body"], cpo_token=STATE.cpo_token, our_token=ours)


@control_route("POST", "/credentials-delete")
async def credentials_delete(request: Request, body: dict):
    require_registration()
    reply = await ocpi_call("DELETE", cpo_endpoint("credentials", None), STATE.cpo_token)
    if ocpi_success(reply):
        STATE.forget_cpo()
        STATE.accepted = []
        return ok(status=reply["status"], body=reply["body"])
    return failed("DELETE credentials did not succeed", status=reply["status"], body=reply["body"])


@control_route("POST", "/tokens")
async def push_token(request: Request, body: dict):
    raw = request.query_params.get("raw") in ("1", "true")
    push = request.query_params.get("push", "1") not in ("0", "false")
    token = body if raw else default_token(body)
    if not raw:
        errors = schema_errors(Token, token)
        if errors:
            return failed("token does not validate", http_status=400, validation_errors=errors)
        STATE.tokens[lower_key(token["uid"], token["type"])] = token
    if not push:
        return ok(stored=True, token=token)
    require_registration()
    url = join_url(cpo_endpoint("tokens", "RECEIVER"), token["country_code"], token["party_id"], token["uid"])
    url += "?" + urlencode({"type": token.get("type", "RFID")})
    reply = await ocpi_call("PUT", url, STATE.cpo_token, token)
    return JSONResponse(
        {
            "ok": ocpi_success(reply),
            "stored": not raw,
            "status": reply["status"],
            "body": reply["body"],
            "url": url,
            "token": token,
        }
    )


@control_route("POST", "/authorize")
async def set_authorize(request: Request, body: dict):
    uid = body["uid"]
    if body.get("clear"):
        STATE.auth_rules.pop(uid.lower(), None)
        return ok(uid=uid, rule=None)
    allowed = body.get("allowed", "ALLOWED")
    if allowed not in ALLOWED_VALUES:
        raise ValueError(f"allowed must be one of {sorted(ALLOWED_VALUES)}")
    rule = {"allowed": allowed, "delay_ms": int(body.get("delay_ms", 0))}
    for optional in ("location", "authorization_reference", "info"):
        if optional in body:
            rule[optional] = body[optional]
    STATE.auth_rules[uid.lower()] = rule
    return ok(uid=uid, rule=rule)


@control_route("POST", "/command")
async def send_command(request: Request, body: dict):
    require_registration()
    command = body["command"]
    payload = copy.deepcopy(body.get("body") or {})
    if isinstance(payload.get("token"), str):  # a uid: send the stored token
        uid = payload["token"]
        payload["token"] = next((t for k, t in STATE.tokens.items() if k[0] == uid.lower()), None) or default_token(
            {"uid": uid}
        )
    uid = uuid.uuid4().hex
    if "response_url" not in payload:
        payload["response_url"] = f"{MODULE_ROOT}/commands/{uid}"
    else:
        uid = payload["response_url"].rstrip("/").rsplit("/", 1)[-1]
    schema = COMMAND_SCHEMAS.get(command)
    body_errors = schema_errors(schema, payload) if schema else [{"msg": f"unknown command {command}"}]
    STATE.commands[uid] = {"command": command, "response_url": payload["response_url"], "results": []}
    url = join_url(cpo_endpoint("commands", "RECEIVER"), command)
    reply = await ocpi_call("POST", url, STATE.cpo_token, payload)
    data = reply["body"].get("data") if isinstance(reply["body"], dict) else None
    return JSONResponse(
        {
            "ok": ocpi_success(reply),
            "status": reply["status"],
            "body": reply["body"],
            "response_url": payload["response_url"],
            "uid": uid,
            "url": url,
            "body_errors": body_errors,
            "response_errors": schema_errors(command_schemas.CommandResponse, data)
            if ocpi_success(reply)
            else None,
        }
    )


def _segments(url: str) -> int:
    return len([p for p in urlsplit(url).path.split("/") if p])


def pull_schema(module: str, url: str, data: Any) -> Optional[Any]:
    """The library schema the pulled data should match."""
    if module == "locations":
        if isinstance(data, list):
            return Location
        # The Sender interface: {locations}/{location_id}[/{evse_uid}[/{connector_id}]]
        # (only the Receiver interface carries country_code and party_id).
        depth = _segments(url) - _segments(cpo_endpoint("locations", None))
        return {1: Location, 2: EVSE, 3: Connector}.get(depth)
    return {"sessions": Session, "cdrs": Cdr, "tariffs": Tariff, "tokens": Token, "credentials": Credentials}.get(module)


@control_route("POST", "/get")
async def pull(request: Request, body: dict):
    require_registration()
    module = body.get("module", "")
    if body.get("url"):  # e.g. a Link header's next page
        url = body["url"]
    else:
        base, suffix = cpo_endpoint(module, "SENDER"), body.get("path_suffix", "")
        if not suffix:
            url = base
        elif suffix.startswith("?"):
            url = base + suffix
        else:
            url = base.rstrip("/") + "/" + suffix.lstrip("/")
    reply = await ocpi_call("GET", url, STATE.cpo_token)
    envelope = envelope_errors(reply["body"])
    item_errors = []
    data = reply["body"].get("data") if isinstance(reply["body"], dict) else None
    schema = pull_schema(module, url, data) if data is not None else None
    if schema is not None:
        for index, item in enumerate(data if isinstance(data, list) else [data]):
            errors = schema_errors(schema, item)
            if errors:
                item_errors.append({"index": index, "errors": errors})
    return JSONResponse(
        {
            "ok": ocpi_success(reply),
            "status": reply["status"],
            "headers": reply["headers"],
            "body": reply["body"],
            "url": url,
            "schema": schema.__name__ if schema else None,
            "valid": not envelope and not item_errors,
            "validation_errors": {"envelope": envelope, "items": item_errors},
        }
    )


@control_route("POST", "/down")
async def go_down(request: Request, body: dict):
    STATE.down_status = int(body.get("status", 503))
    return ok(down=STATE.down_status)


@control_route("POST", "/up")
async def go_up(request: Request, body: dict):
    STATE.down_status = None
    return ok(down=None)


@control_route("GET", "/received")
async def received(request: Request, body: dict):
    since = max(int(request.query_params.get("since", 0)), 0)
    return JSONResponse({"next": len(STATE.received), "items": STATE.received[since:]})


@control_route("GET", "/sent")
async def sent(request: Request, body: dict):
    since = max(int(request.query_params.get("since", 0)), 0)
    return JSONResponse({"next": len(STATE.sent), "items": STATE.sent[since:]})


@control_route("GET", "/objects/{module}")
async def objects(request: Request, body: dict):
    module = request.path_params["module"]
    if module == "tokens":
        return JSONResponse({"items": list(STATE.tokens.values())})
    if module == "commands":
        return JSONResponse({"items": STATE.commands})
    if module not in STATE.objects:
        raise ValueError(f"unknown module {module}")
    return JSONResponse({"items": json.loads(json.dumps(list(STATE.objects[module].values()), default=str))})


@control_route("GET", "/state")
async def state(request: Request, body: dict):
    return JSONResponse(
        {
            "versions_url": VERSIONS_URL,
            "details_url": DETAILS_URL,
            "country_code": COUNTRY_CODE,
            "party_id": PARTY_ID,
            "registered": STATE.cpo_token is not None,
            "registered_via": STATE.registered_via,
            "cpo_token": STATE.cpo_token,
            "cpo_versions_url": STATE.cpo_versions_url,
            "cpo_details_url": STATE.cpo_details_url,
            "cpo_roles": STATE.cpo_roles,
            "cpo_endpoints": STATE.cpo_endpoints,
            "token_a": STATE.token_a,
            "our_tokens": STATE.accepted,
            "our_token": STATE.accepted[-1] if STATE.accepted else None,
            "down": STATE.down_status,
            "received": len(STATE.received),
            "authorize_rules": STATE.auth_rules,
            "commands": STATE.commands,
        }
    )


# --------------------------------------------------------------------------
# Middleware around the library: record, refuse while down, OCPI fix-ups
# --------------------------------------------------------------------------

OCPI_PATHS = re.compile(r"^/+ocpi/+(versions|2\.2\.1|emsp)(/|$)")
MODULE_ROOTS = re.compile(r"^/ocpi/emsp/2\.2\.1/(credentials|cdrs|tokens)$")
AUTHORIZE = re.compile(r"^/ocpi/emsp/2\.2\.1/tokens/[^/]+/authorize$")
SINGLE_OBJECT_GET = re.compile(r"^/ocpi/emsp/2\.2\.1/(locations|sessions|tariffs|cdrs)/.+$")
AUTH_FAILURES = {"Your authorization token is invalid.", "Not authenticated", "Unauthorized"}


def _module_of(path: str) -> str:
    parts = [p for p in path.split("/") if p]
    if parts[1:2] == ["versions"]:
        return "versions"
    if len(parts) >= 3 and parts[2] == "details":
        return "details"
    return parts[3] if len(parts) >= 4 and parts[1] == "emsp" else "unknown"


def _normalise_token(header: Optional[str]) -> tuple:
    """Return (header for the library, token as the CPO meant it).

    OCPI 2.2.1 sends `Token base64(token)`; a plain token is accepted too by
    encoding it for the library, which always base64-decodes on 2.2.1."""
    if not header:
        return header, None
    parts = header.split(None, 1)
    if len(parts) != 2:
        return header, None
    given = parts[1].strip()
    try:
        decoded = base64.b64decode(given, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        decoded = None
    known = STATE.known_tokens()
    if decoded is not None and decoded in known:
        return f"Token {given}", decoded
    if given in known or decoded is None:
        return f"Token {b64(given)}", given
    return f"Token {given}", decoded


def _envelope(data: Any, code: int, message: str) -> dict:
    return {"data": data, "status_code": code, "status_message": message[:255], "timestamp": now_iso()}


class OcpiPeerMiddleware:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not OCPI_PATHS.match(scope["path"]):
            await self.app(scope, receive, send)
            return

        chunks = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        raw_body = b"".join(chunks)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        path = re.sub(r"/{2,}", "/", scope["path"])
        query = scope.get("query_string", b"").decode("latin-1")
        library_auth, token = _normalise_token(headers.get("authorization"))
        try:
            body = json.loads(raw_body) if raw_body.strip() else None
        except ValueError:
            body = None
        record = {
            "index": len(STATE.received),
            "at": now_iso(),
            "method": scope["method"],
            "path": scope["path"],
            "query": query,
            "module": _module_of(path),
            "authorization": headers.get("authorization"),
            "token": token,
            "headers": headers,
            "body": body,
            "body_text": None if body is not None or not raw_body else raw_body.decode("utf-8", "replace"),
            "refused": False,
            "status": None,
            "response": None,
            "validation_errors": None,
        }
        STATE.received.append(record)
        echo = [(b"content-type", b"application/json")]
        for name in ("x-request-id", "x-correlation-id"):
            if name in headers:
                echo.append((name.encode(), headers[name].encode("latin-1")))

        if STATE.down_status is not None:
            record["refused"] = True
            payload = _envelope(None, 3000, "eMSP test peer is down (test control)")
            await self._answer(send, record, STATE.down_status, echo, payload)
            return

        # Library routing: module roots carry a trailing slash, others none.
        path = path.rstrip("/")
        if MODULE_ROOTS.match(path):
            path += "/"
        if AUTHORIZE.match(path):  # OCPI's ?type= is the library's ?token_type=
            pairs = [("token_type" if k == "type" else k, v) for k, v in parse_qsl(query, keep_blank_values=True)]
            query = urlencode(pairs)
        inner = dict(scope)
        inner["path"] = path
        inner["raw_path"] = path.encode()
        inner["query_string"] = query.encode("latin-1")
        inner["headers"] = [(k, v) for k, v in scope["headers"] if k.lower() != b"authorization"]
        if library_auth:
            inner["headers"].append((b"authorization", library_auth.encode("latin-1")))

        sent_body = False

        async def replay() -> dict:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": raw_body, "more_body": False}
            return await receive()

        response = {"status": 500, "headers": [], "body": b""}

        async def capture(message: dict) -> None:
            if message["type"] == "http.response.start":
                response["status"] = message["status"]
                response["headers"] = list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                response["body"] += message.get("body", b"")

        token_ctx = CURRENT.set(record)
        try:
            await self.app(inner, replay, capture)
        except Exception as exc:  # the library let something through
            response = {"status": 500, "headers": [], "body": json.dumps(
                _envelope(None, 3000, f"{type(exc).__name__}: {exc}")).encode()}
        finally:
            CURRENT.reset(token_ctx)

        status, payload, extra = self._fix_up(scope["method"], path, record, response)
        out_headers = echo + [(k, v) for k, v in extra]
        await self._answer(send, record, status, out_headers, payload)

    def _fix_up(self, method: str, path: str, record: dict, response: dict) -> tuple:
        """Map the library's answer onto OCPI 2.2.1 where the two differ."""
        status = response["status"]
        try:
            payload = json.loads(response["body"]) if response["body"] else None
        except ValueError:
            payload = _envelope(None, 3000, response["body"].decode("utf-8", "replace"))
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in response["headers"]}
        extra = []

        if isinstance(payload, dict) and "detail" in payload and "status_code" not in payload:
            detail = payload["detail"]
            if status == 422:  # FastAPI/pydantic rejected the request
                record["validation_errors"] = detail
                summary = "; ".join(
                    f"{'.'.join(str(p) for p in e.get('loc', []))}: {e.get('msg')}" for e in detail
                ) if isinstance(detail, list) else str(detail)
                status, payload = 400, _envelope(None, 2001, f"Invalid or missing parameters: {summary}")
            elif status in (401, 403) and detail in AUTH_FAILURES:
                status, payload = 401, _envelope(None, 2000, f"Unauthorized: {detail}")
            elif status == 404:
                if AUTHORIZE.match(path):
                    payload = _envelope(None, 2004, "Unknown Token")
                elif "/locations/" in path:
                    payload = _envelope(None, 2003, "Unknown Location")
                else:
                    payload = _envelope(None, 2000, str(detail))
            else:
                payload = _envelope(None, 2000 if status < 500 else 3000, str(detail))

        ok_envelope = status == 200 and isinstance(payload, dict) and payload.get("status_code") == 1000
        if ok_envelope and (AUTHORIZE.match(path) or (method == "GET" and SINGLE_OBJECT_GET.match(path))):
            data = payload.get("data")
            if isinstance(data, list) and len(data) == 1:  # 2.2.1: one object, not a list
                payload["data"] = data[0]
        if ok_envelope and method == "GET" and path.rstrip("/").endswith("/tokens"):
            # The library builds the Link header as https://.../cpo/VersionNumber.v_2_2_1/...
            # with date_from=None; rebuild it for our tokens endpoint.
            link = headers.get("link", "")
            match = re.search(r"<([^>]*)>", link)
            if match:
                params = [(k, v) for k, v in parse_qsl(urlsplit(match.group(1)).query) if v != "None"]
                extra.append(("link", f'<{MODULE_ROOT}/tokens?{urlencode(params)}>; rel="next"'))
            for name in ("x-total-count", "x-limit"):
                if name in headers:
                    extra.append((name, headers[name]))
        if ok_envelope and method == "POST" and path.rstrip("/").endswith("/cdrs"):
            cdr_id = (record["body"] or {}).get("id") if isinstance(record["body"], dict) else None
            if cdr_id:
                extra.append(("location", f"{MODULE_ROOT}/cdrs/{quote(str(cdr_id), safe='')}"))
        return status, payload, [(k.encode(), v.encode("latin-1")) for k, v in extra]

    @staticmethod
    async def _answer(send: Any, record: dict, status: int, headers: list, payload: Any) -> None:
        body = json.dumps(payload, default=str).encode()
        record["status"] = status
        record["response"] = payload
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": headers + [(b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


# --------------------------------------------------------------------------
# Application and entry point
# --------------------------------------------------------------------------


def build_app() -> Any:
    app = get_application(
        version_numbers=[VersionNumber.v_2_2_1],
        roles=[RoleEnum.emsp],
        crud=PeerCrud,
        modules=[
            ModuleID.credentials_and_registration,
            ModuleID.locations,
            ModuleID.sessions,
            ModuleID.cdrs,
            ModuleID.tariffs,
            ModuleID.tokens,
            ModuleID.commands,
        ],
        authenticator=PeerAuthenticator,
        adapter=PeerAdapter,
    )
    app.include_router(control)
    return OcpiPeerMiddleware(app)


def _exit_on_stdin_eof() -> None:
    while sys.stdin.buffer.read(4096):
        pass
    os._exit(0)


async def main() -> None:
    global CLIENT
    library_logger.setLevel("INFO" if ARGS.verbose else "WARNING")
    if ARGS.exit_with_stdin:
        threading.Thread(target=_exit_on_stdin_eof, daemon=True).start()
    CLIENT = OcpiAsyncClient()
    config = uvicorn.Config(build_app(), log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[LISTEN]))
    while not server.started:
        if serving.done():
            serving.result()
            sys.exit("server stopped before it was ready")
        await asyncio.sleep(0.01)
    print(f"READY {BASE}", flush=True)
    await serving


if __name__ == "__main__":
    asyncio.run(main())
