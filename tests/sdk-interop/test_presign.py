"""Presigned URLs made by each official SDK (V1 and V4, with and without an STS token), used
with a plain HTTP client (http.client: no SDK, no re-encoding), and tampered ones refused."""

import http.client
import time
from urllib.parse import urlsplit

import pytest

from conftest import ACCESS_KEY_ID, ACCESS_KEY_SECRET, REGION
from sdk_clients import make_client

KEY = "presigned/中文 a+b%?#.txt"
TOKEN = "CAIS/sts+token=with/odd+chars"


def http_call(url, method="GET", body=None, headers=None):
    parts = urlsplit(url)
    assert parts.hostname == "127.0.0.1", url
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        target = parts.path + ("?" + parts.query if parts.query else "")
        conn.request(method, target, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def error_code(body):
    text = body.decode(errors="replace")
    start = text.find("<Code>")
    return text[start + 6:text.find("</Code>")] if start >= 0 else text[:200]


@pytest.fixture(params=[None, TOKEN], ids=["ak", "sts"])
def signer_client(request, sdk, emulator):
    name, version = sdk
    return make_client(name, emulator.endpoint, version, ACCESS_KEY_ID, ACCESS_KEY_SECRET,
                       security_token=request.param, region=REGION)


def test_presigned_get_and_put(client, signer_client, bucket):
    body = b"uploaded through a presigned URL\n" * 50
    put_url = signer_client.presign("PUT", bucket, KEY, 300, headers={"Content-Type": "text/plain"})
    status, _, resp = http_call(put_url, "PUT", body, {"Content-Type": "text/plain"})
    assert status == 200, resp

    get_url = signer_client.presign("GET", bucket, KEY, 300)
    status, headers, data = http_call(get_url)
    assert status == 200, data
    assert data == body
    assert headers["content-type"] == "text/plain"
    assert client.get(bucket, KEY)[0] == body  # the header-signed client sees the same object


def _tamper(url, name, value):
    head, query = url.split("?", 1)
    pairs = [p.partition("=") for p in query.split("&")]
    assert any(k == name for k, _, _ in pairs), (name, url)
    return head + "?" + "&".join(f"{k}={value if k == name else v}" if eq else k for k, eq, v in pairs)


def test_tampered_presigned_urls_are_refused(client, signer_client, bucket):
    client.put(bucket, KEY, b"secret bytes")
    client.put(bucket, KEY + "-other", b"other bytes")
    url = signer_client.presign("GET", bucket, KEY, 300)
    assert http_call(url)[0] == 200

    expiry_param = "x-oss-expires" if client.version == "v4" else "Expires"
    original = dict(p.partition("=")[::2] for p in url.split("?", 1)[1].split("&"))[expiry_param]
    tampered = {
        "other key": url.replace("?", "-other?", 1),
        "longer lifetime": _tamper(url, expiry_param, str(int(original) + 1)),
        "other method": None,
    }
    for what, bad_url in tampered.items():
        if bad_url is None:
            status, _, resp = http_call(url, "DELETE")
        else:
            status, _, resp = http_call(bad_url)
        assert status == 403, (what, resp)
        assert error_code(resp) == "SignatureDoesNotMatch", (what, resp)
    assert client.get(bucket, KEY)[0] == b"secret bytes"  # the DELETE did not happen


def test_expired_presigned_url_is_refused(client, bucket):
    client.put(bucket, KEY, b"short-lived")
    # 2 s, not 1: alibabacloud-oss-v2 computes x-oss-expires from two clock readings and rounds
    # down, so a 1 s lifetime becomes x-oss-expires=0, which OSS refuses as invalid, not expired.
    url = client.presign("GET", bucket, KEY, 2)
    assert http_call(url)[0] == 200
    time.sleep(3.5)  # past the lifetime, whatever the second boundaries of the signing times
    status, _, resp = http_call(url)
    assert status == 403, resp
    assert error_code(resp) == "AccessDenied"
