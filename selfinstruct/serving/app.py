"""`selfinstruct serve`'s HTTP face: OpenAI-compatible routes, the contract-aware answer route, feedback, review page.

    app = create_app(service, feedback_inbox=inbox_for("feedback"), queries_inbox=inbox_for("queries"), token=None)
    uvicorn.run(app, host="127.0.0.1", port=8000)

    GET  /v1/models             the served adapter ('selfinstruct' = served, A/B included) and the candidate
    POST /v1/chat/completions   OpenAI chat; the contract in extra_body={"contract_id": ...} or metadata.contract_id
    POST /v1/answers            {"contract_id", "question"} -> quote + contract offsets, or "No such clause."
    POST /v1/feedback           {"request_id", "score" 0-1, "corrected_quote"?} -> feedback inbox rows (human)
    GET  /review                the review queue (sign in on /review/login, or send X-Reviewer)

Dagster-free. Safe by default: with a token every route asks for `Authorization: Bearer <token>` (the review page
takes it once on /review/login and keeps a random session id in a cookie, never the token); bodies above
`max_body_bytes` get 413; no route takes a path. Errors come back as OpenAI-style {"error": {"message": ...}}.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from selfinstruct.serving.ratings import check_correction, check_reviewer, rated_requests, rating_rows, write_rows
from selfinstruct.serving.request_errors import RequestError
from selfinstruct.serving.review import queue, recent_requests, render_login, render_queue
from selfinstruct.serving.service import CANDIDATE, SERVED, Service

log = logging.getLogger(__name__)

SESSION_COOKIE = "selfinstruct_session"
OPEN_PATHS = ("/review/login",)  # takes the token in its form, so it cannot ask for it first


class AnswerRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    contract_id: str
    question: str
    model: str | None = None  # an adapter id from /v1/models; default: the served one, A/B included


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    request_id: str
    score: float  # 0 (wrong) .. 1 (right), about the served answer
    corrected_quote: str | None = None  # the right verbatim clause, or "No such clause."
    start: int | None = None  # the corrected quote's contract offsets, when known
    end: int | None = None
    reviewer: str | None = None  # else the X-Reviewer header, else "api"


class ReviewAction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    request_id: str
    action: str
    quote: str | None = None
    start: int | None = None
    end: int | None = None


def _error(status: int, message: str) -> JSONResponse:
    kind = "authentication_error" if status == 401 else "invalid_request_error"
    return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status_code=status)


class Guard:
    """ASGI middleware: the bearer token (or a review session) on every route, and the body size limit."""

    def __init__(self, app, token: str | None, sessions: dict[str, str], max_body_bytes: int):
        self.app, self.token, self.sessions, self.max_body = app, token, sessions, max_body_bytes

    def _authorised(self, scope) -> bool:
        if not self.token or scope["path"] in OPEN_PATHS:
            return True
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        scheme, _, given = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self.token.encode()):
            return True
        return session_of(headers.get("cookie", ""), self.sessions) is not None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if not self._authorised(scope):
            if scope["method"] == "GET" and scope["path"].startswith("/review"):  # a browser: to the sign-in form
                return await RedirectResponse("/review/login", status_code=303)(scope, receive, send)
            return await _error(
                401, "missing or wrong bearer token: send 'Authorization: Bearer <SELFINSTRUCT_SERVE_TOKEN>'"
            )(scope, receive, send)
        body, more = b"", True
        while more:  # bodies are small: read whole (at most max_body + one message), then hand on
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_body:
                return await _error(413, f"request body is over {self.max_body} bytes")(scope, receive, send)
        sent = False

        async def replay():
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        return await self.app(scope, replay, send)


def session_of(cookie_header: str, sessions: Mapping[str, str]) -> str | None:
    """The reviewer of the session cookie, or None."""
    for part in cookie_header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == SESSION_COOKIE and value in sessions:
            return sessions[value]
    return None


def create_app(
    service: Service,
    feedback_inbox,
    queries_inbox,
    token: str | None = None,
    judge=None,
    golds: Callable[[str, str], list[str] | None] | None = None,
    categories: Callable[[str], str | None] | None = None,
    review_size: int = 20,
) -> Guard:
    """The app over a `Service` (not started: the app's lifespan starts and stops it)."""
    sessions: dict[str, str] = {}  # session id -> reviewer, for the review page

    @asynccontextmanager
    async def lifespan(_app):
        service.start()
        try:
            yield
        finally:
            service.stop()  # publishes the query lines still buffered

    app = FastAPI(title="selfinstruct serve", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(RequestError)
    async def request_error(_request, exc: RequestError):
        return _error(exc.status, str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request, exc: StarletteHTTPException):
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid(_request, exc: RequestValidationError):
        parts = [f"{'.'.join(str(x) for x in e['loc'][1:]) or 'body'}: {e['msg']}" for e in exc.errors()]
        return _error(422, "; ".join(parts)[:1000])

    def reviewer_of(request: Request, given: str | None = None) -> str | None:
        return given or request.headers.get("x-reviewer") or session_of(request.headers.get("cookie", ""), sessions)

    def find(request_id: str) -> dict:
        record = service.records.get(request_id)
        if record is None:  # answered before a restart: the query inbox has it
            record = next((r for r in recent_requests(queries_inbox) if r["request_id"] == request_id), None)
        if record is None:
            raise RequestError(f"unknown request_id {request_id[:40]!r}: it names no request this server answered", 404)
        return record

    def save(record: dict, action: str, reviewer: str, score=None, quote=None, start=None, end=None) -> int:
        corrected = None
        if quote is not None:
            text = service.contracts.get(record["contract_id"])
            if text is None:  # a request answered before a restart, on a contract this server no longer loads
                raise RequestError(
                    f"contract {record['contract_id'][:100]!r} of request {record['request_id']} is not served "
                    "now, so a correction cannot be checked against it; rate the answer without corrected_quote",
                    409,
                )
            corrected = check_correction(text, quote, start, end)
        rows = rating_rows(record, action, reviewer, score, corrected)
        write_rows(feedback_inbox, rows)
        log.info("feedback: %s on request %s (%d rows)", action, record["request_id"], len(rows))
        return len(rows)

    # -- OpenAI-compatible ----------------------------------------------------------------------------
    @app.get("/v1/models")
    def models():
        ids, created = service.model_ids(), int(time.time())
        data = [
            {
                "id": "selfinstruct",
                "object": "model",
                "created": created,
                "owned_by": "selfinstruct",
                "adapter_id": ids[SERVED],
                "arms": ids,
                "candidate_share": service.settings.candidate_share,
            }
        ]
        data += [
            {"id": mid, "object": "model", "created": created, "owned_by": "selfinstruct", "arm": arm}
            for arm, mid in ids.items()
            if mid is not None and not (arm == CANDIDATE and mid == ids[SERVED])
        ]
        return {"object": "list", "data": data, "errors": dict(service.errors)}

    @app.post("/v1/answers")
    def answers(body: AnswerRequest):
        return service.ask(body.question, body.contract_id, body.model)

    @app.post("/v1/chat/completions")
    def chat(body: dict):
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            raise RequestError("messages must be a non-empty list of chat messages", 422)
        users = [m for m in body["messages"] if isinstance(m, dict) and m.get("role") == "user"]
        if not users:
            raise RequestError("messages hold no user message: the question is the last user message", 422)
        content = users[-1].get("content")
        if isinstance(content, list):  # OpenAI content parts: text only
            texts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
            if not all(isinstance(t, str) for t in texts):
                raise RequestError(
                    "a text part of the user message must hold a string: {'type': 'text', 'text': '...'}", 422
                )
            content = "".join(t for t in texts if isinstance(t, str))
        meta = body["metadata"] if isinstance(body.get("metadata"), dict) else {}
        contract_id = body.get("contract_id") or meta.get("contract_id")
        if not contract_id:
            raise RequestError(
                "chat completions need the contract: send contract_id in the body (openai client: "
                "extra_body={'contract_id': ...}) or in metadata.contract_id",
                422,
            )
        model = body.get("model")
        record = service.ask(content, contract_id, None if model in (None, "", "selfinstruct") else str(model))
        reply = {
            "id": f"chatcmpl-{record['request_id']}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": record["adapter_id"],
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": record["answer"]}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            "selfinstruct": record,
        }
        if not body.get("stream"):
            return reply

        def events():
            chunk = {**reply, "object": "chat.completion.chunk"}
            first = {"index": 0, "delta": {"role": "assistant", "content": record["answer"]}, "finish_reason": None}
            last = {"index": 0, "delta": {}, "finish_reason": "stop"}
            yield f"data: {json.dumps({**chunk, 'choices': [first]})}\n\n"
            yield f"data: {json.dumps({**chunk, 'choices': [last]})}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    @app.post("/v1/feedback")
    def feedback(body: FeedbackRequest, request: Request):
        record = find(body.request_id)
        reviewer = check_reviewer(reviewer_of(request, body.reviewer) or "api")
        n = save(record, "rate", reviewer, body.score, body.corrected_quote, body.start, body.end)
        return {"request_id": body.request_id, "rows": n}

    # -- review page -------------------------------------------------------------------------------------
    @app.get("/review/login", response_class=HTMLResponse)
    def login_form():
        return render_login(bool(token))

    @app.post("/review/login")
    async def login(request: Request):
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
        if token and not hmac.compare_digest(form.get("token", "").encode(), token.encode()):
            return HTMLResponse(render_login(True, "Wrong access token."), status_code=401)
        try:
            name = check_reviewer(form.get("reviewer"))
        except RequestError as exc:
            return HTMLResponse(render_login(bool(token), str(exc)), status_code=exc.status)
        sid = secrets.token_urlsafe(24)
        sessions[sid] = name
        resp = RedirectResponse("/review", status_code=303)
        resp.set_cookie(SESSION_COOKIE, sid, httponly=True, samesite="strict")
        return resp

    @app.get("/review", response_class=HTMLResponse)
    def review(request: Request):
        reviewer = reviewer_of(request)
        if not reviewer:
            return RedirectResponse("/review/login", status_code=303)
        items = queue(
            recent_requests(queries_inbox, service.records),
            rated_requests(feedback_inbox),
            judge,
            golds,
            categories,
            service.settings.margin,
            review_size,
        )
        return render_queue(items, service.contracts, service.passages, check_reviewer(reviewer))

    @app.post("/review/rate")
    def rate(body: ReviewAction, request: Request):
        reviewer = check_reviewer(reviewer_of(request))
        record = find(body.request_id)
        quote = body.quote if body.action == "correct" else None
        n = save(record, body.action, reviewer, None, quote, body.start, body.end)
        return {"request_id": body.request_id, "rows": n}

    return Guard(app, token, sessions, service.settings.max_body_bytes)


@contextmanager
def serve_in_thread(app, host: str = "127.0.0.1", port: int = 0, start_s: float = 120.0) -> Iterator[str]:
    """Run `app` under uvicorn in a thread (tests, benchmarks); yields its base URL, stops it (lifespan included)."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + start_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the server did not start within {start_s:.0f} s (see the log above)")
        time.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join()
