"""moto_server whose requests take effect one at a time, as S3's conditional writes do.

ferry's state store relies on S3's atomic conditional writes (PutObject with If-Match or
If-None-Match: the check and the write are one step). moto checks the condition and then writes
in two steps, with no lock between them, on a threaded server: two writers that read the same
ETag can both pass the check, and one update is lost. A test of ferry's compare-and-swap loops
against plain moto therefore fails now and then through moto's race, not ferry's.

This launcher runs moto's own server (same arguments as `moto_server`) with one change: each
S3 request is handled whole under one lock, so a conditional write is atomic, as on S3.
Responses are read into memory inside the lock; moto holds every object in memory anyway.
Other services' requests (SQS long polls above all) stay concurrent.

Run it with the repo's virtualenv: `.venv/bin/python tests/support/moto_server.py -H 127.0.0.1
-p PORT`.
"""

import threading

from moto import server
from moto.moto_server.werkzeug_app import DomainDispatcherApplication

_ONE_AT_A_TIME = threading.Lock()
_handle = DomainDispatcherApplication.__call__


def _is_s3(environ):
    """Whether the request is signed for S3 (header or presigned query). Other services are
    left concurrent: an SQS long poll holds its request open for seconds."""
    scope = environ.get("HTTP_AUTHORIZATION", "") + environ.get("QUERY_STRING", "")
    return "/s3/aws4_request" in scope or "%2Fs3%2Faws4_request" in scope


def _serialized(self, environ, start_response):
    if not _is_s3(environ):
        return _handle(self, environ, start_response)
    with _ONE_AT_A_TIME:
        body = _handle(self, environ, start_response)
        try:
            return [b"".join(body)]
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()


DomainDispatcherApplication.__call__ = _serialized

if __name__ == "__main__":
    server.main()
