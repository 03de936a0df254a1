"""The one place where errors become HTTP responses.

Every error has the same JSON shape: `{"error": {"code", "message"}}`. A
request that fails on bad input gets a 4xx that names the problem; an outage
of the store or Redis gets a 503 with Retry-After so the sender tries again;
anything unexpected is logged with its traceback and answered 500 without
details.
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import ValidationError

from hub import errors

log = logging.getLogger(__name__)

STATUS: dict[type[errors.HubError], int] = {
    errors.InvalidRequest: 422,
    errors.SignatureInvalid: 403,
    errors.Unauthenticated: 401,
    errors.Forbidden: 403,
    errors.RateLimited: 429,
    errors.UnknownAccount: 404,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.DuplicateMessage: 409,
    errors.IdentityTaken: 409,
    errors.ReplyWindowClosed: 409,
    errors.PayloadTooLarge: 413,
    errors.ProviderRejected: 502,  # a provider failed us while serving this request
    errors.StoreUnavailable: 503,
    errors.QueueUnavailable: 503,
    errors.ProviderUnavailable: 503,
    errors.ProviderRejected: 502,
}

HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
}


def error_response(status: int, code: str, message: str) -> web.Response:
    response = web.json_response({"error": {"code": code, "message": message}}, status=status)
    if status == 503:
        response.headers["Retry-After"] = "5"
    return response


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except errors.HubError as exc:
        status = next((s for t, s in STATUS.items() if isinstance(exc, t)), 400)
        level = logging.WARNING if status >= 500 else logging.INFO
        log.log(
            level,
            "request refused",
            extra={
                "event": "http.refused",
                "path": request.path,
                "status": status,
                "code": exc.code,
                "reason": exc.message,
            },
        )
        response = error_response(status, exc.code, exc.message)
        if isinstance(exc, errors.RateLimited):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except ValidationError as exc:
        return error_response(422, "invalid_request", errors.describe_validation(exc))
    except web.HTTPRequestEntityTooLarge as exc:
        return error_response(413, "payload_too_large", exc.text or "body too large")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = HTTP_CODES.get(exc.status, "http_error")
        return error_response(exc.status, code, exc.reason)
    except Exception:
        log.exception("unhandled error", extra={"event": "http.error", "path": request.path})
        return error_response(500, "internal_error", "the hub failed to handle this request")
