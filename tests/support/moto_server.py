"""moto_server whose requests take effect one at a time, as S3's conditional writes do, and
whose S3 answers can be made to fail on demand.

ferry's state store relies on S3's atomic conditional writes (PutObject with If-Match or
If-None-Match: the check and the write are one step). moto checks the condition and then writes
in two steps, with no lock between them, on a threaded server: two writers that read the same
ETag can both pass the check, and one update is lost. A test of ferry's compare-and-swap loops
against plain moto therefore fails now and then through moto's race, not ferry's.

This launcher runs moto's own server (same arguments as `moto_server`) with one change: each
S3 request is handled whole under one lock, so a conditional write is atomic, as on S3.
Responses are read into memory inside the lock; moto holds every object in memory anyway.
Other services' requests (SQS long polls above all) stay concurrent.

Fault injection, to test ferry's state store under S3's 503 bursts and lost answers: the
wrapper itself (never moto, never under the S3 lock) serves `/-/ferry/faults`.
`POST` with a JSON rule `{"count": 5, "status": 503, "method": "PUT", "path_contains":
"/results/", "phase": "before", "code": "SlowDown"}` (all but `count` optional; any method and
path, phase "before", status 503, code SlowDown for 503 and InternalError otherwise) appends it;
`GET` answers `{"rules": [...], "injected": N}` (rules with their remaining count, N injections
so far); `DELETE` removes all rules. Each S3 request consumes one count of the first rule that
matches its method and path (as the server sees it: path style, `/bucket/key`, percent-decoded)
and is answered with the rule's S3 error. Phase "before": moto never sees the request. Phase
"after": moto handles it (a write takes effect) and its answer is replaced by the error, as when
S3 did the work but the answer was lost.

Run it with the repo's virtualenv: `.venv/bin/python tests/support/moto_server.py -H 127.0.0.1
-p PORT`.
"""

import http
import json
import threading

from moto import server
from moto.moto_server.werkzeug_app import DomainDispatcherApplication

_ONE_AT_A_TIME = threading.Lock()
_handle = DomainDispatcherApplication.__call__

FAULTS_PATH = "/-/ferry/faults"
_FAULTS_LOCK = threading.Lock()
_rules = []  # dicts as answered by GET, in the order added; exhausted rules are removed
_injected = 0
_RULE_FIELDS = {"status", "count", "method", "path_contains", "phase", "code"}


def _is_s3(environ):
    """Whether the request is signed for S3 (header or presigned query). Other services are
    left concurrent: an SQS long poll holds its request open for seconds."""
    scope = environ.get("HTTP_AUTHORIZATION", "") + environ.get("QUERY_STRING", "")
    return "/s3/aws4_request" in scope or "%2Fs3%2Faws4_request" in scope


def _serialized(self, environ, start_response):
    if environ.get("PATH_INFO") == FAULTS_PATH:
        return _faults_admin(environ, start_response)
    if not _is_s3(environ):
        return _handle(self, environ, start_response)
    with _ONE_AT_A_TIME:
        fault = _take_fault(environ)
        if fault is None or fault["phase"] == "after":
            body = _handle(self, environ, start_response if fault is None else _discard_answer)
            try:
                answer = [b"".join(body)]
            finally:
                close = getattr(body, "close", None)
                if close is not None:
                    close()
            if fault is None:
                return answer
    if fault["phase"] == "before":
        _drain(environ)
    return _s3_error(environ, start_response, fault)


def _take_fault(environ):
    """Consumes one count of the first rule that matches the request; returns a copy of it, or
    None."""
    global _injected
    method = environ.get("REQUEST_METHOD", "").upper()
    # PATH_INFO holds the decoded path's bytes as latin-1 (WSGI); keys are UTF-8.
    path = environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8", "replace")
    with _FAULTS_LOCK:
        for i, rule in enumerate(_rules):
            if rule["method"] is not None and rule["method"] != method:
                continue
            if rule["path_contains"] is not None and rule["path_contains"] not in path:
                continue
            rule["count"] -= 1
            if rule["count"] <= 0:
                del _rules[i]
            _injected += 1
            return dict(rule)
    return None


def _discard_answer(status, headers, exc_info=None):
    """start_response for a request whose answer is lost: moto's answer goes nowhere."""
    return lambda data: None


def _drain(environ):
    """Reads and discards the request body moto did not read, so the client is not left sending
    into a connection nobody reads."""
    stream = environ.get("wsgi.input")
    if stream is None:
        return
    if environ.get("wsgi.input_terminated"):  # chunked: the stream ends with the body
        while stream.read(1 << 20):
            pass
        return
    try:
        left = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return
    while left > 0:
        data = stream.read(min(left, 1 << 20))
        if not data:
            break
        left -= len(data)


def _s3_error(environ, start_response, fault):
    code = fault["code"]
    body = (
        '<?xml version="1.0" encoding="UTF-8"?><Error><Code>{}</Code>'
        "<Message>injected by the test</Message><RequestId>ferry-fault</RequestId></Error>"
    ).format(code).encode()
    headers = [("Content-Type", "application/xml"), ("x-amz-request-id", "ferry-fault")]
    if environ.get("REQUEST_METHOD", "").upper() == "HEAD":
        body = b""  # S3 answers a HEAD's error with its status only
    else:
        headers.append(("Content-Length", str(len(body))))
    start_response(_status_line(fault["status"]), headers)
    return [body]


def _status_line(status):
    try:
        return "{} {}".format(status, http.HTTPStatus(status).phrase)
    except ValueError:
        return "{} Injected".format(status)


def _faults_admin(environ, start_response):
    method = environ.get("REQUEST_METHOD", "").upper()
    if method == "GET":
        with _FAULTS_LOCK:
            rules = [dict(r) for r in _rules]
            return _json(start_response, 200, {"rules": rules, "injected": _injected})
    if method == "DELETE":
        with _FAULTS_LOCK:
            _rules.clear()
            return _json(start_response, 200, {"rules": [], "injected": _injected})
    if method == "POST":
        try:
            rule = _parse_rule(_read_body(environ))
        except ValueError as e:
            return _json(start_response, 400, {"error": str(e)})
        with _FAULTS_LOCK:
            _rules.append(rule)
        return _json(start_response, 200, rule)
    _drain(environ)
    allow = [("Allow", "GET, POST, DELETE")]
    return _json(start_response, 405, {"error": "GET, POST or DELETE"}, allow)


def _read_body(environ):
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    stream = environ["wsgi.input"]
    if environ.get("wsgi.input_terminated"):
        return stream.read()
    chunks = []
    while length > 0:
        data = stream.read(length)
        if not data:
            break
        chunks.append(data)
        length -= len(data)
    return b"".join(chunks)


def _parse_rule(raw):
    try:
        given = json.loads(raw)
    except ValueError as e:
        raise ValueError("body is not JSON: {}".format(e))
    if not isinstance(given, dict):
        raise ValueError("body is not a JSON object")
    unknown = sorted(set(given) - _RULE_FIELDS)
    if unknown:
        raise ValueError("unknown fields {} (known: {})".format(unknown, sorted(_RULE_FIELDS)))

    def integer(name, default=None):
        value = given.get(name, default)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError("{} must be an integer, not {!r}".format(name, value))
        return value

    def text(name):
        value = given.get(name)
        if value is not None and not isinstance(value, str):
            raise ValueError("{} must be a string, not {!r}".format(name, value))
        return value

    if "count" not in given:
        raise ValueError("count is required")
    count = integer("count")
    if count < 1:
        raise ValueError("count must be at least 1, not {}".format(count))
    status = integer("status", 503)
    if not 100 <= status <= 599:
        raise ValueError("status must be an HTTP status, not {}".format(status))
    phase = text("phase") or "before"
    if phase not in ("before", "after"):
        raise ValueError('phase must be "before" or "after", not {!r}'.format(phase))
    method = text("method")
    code = text("code") or ("SlowDown" if status == 503 else "InternalError")
    return {
        "status": status,
        "count": count,
        "method": method.upper() if method else None,
        "path_contains": text("path_contains"),
        "phase": phase,
        "code": code,
    }


def _json(start_response, status, value, extra_headers=()):
    body = json.dumps(value).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    start_response(_status_line(status), headers + list(extra_headers))
    return [body]


DomainDispatcherApplication.__call__ = _serialized

if __name__ == "__main__":
    server.main()
