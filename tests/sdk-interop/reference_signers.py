"""The official Python SDKs' signers, driven with a fixed clock, returning a comparable result.

Every function takes a case from `signing_cases` (the input format of ferry's `sign_requests`
example) and returns a dict:

* header signing: ``{"authorization": ..., "headers": {name: value}, "string_to_sign": ...}``
  where a V4 authorization is parsed into ``(credential, additional_headers, signature)``
  (oss2 writes ``", "`` between the parts and puts AdditionalHeaders last; the parts, not the
  layout, are the signature), and ``headers`` holds the signer-added date/token headers;
* presigning: ``{"params": {name: decoded value}, "string_to_sign": ...}`` — the query
  parameters the signer appended to the URL.

``string_to_sign`` is ``None`` where the SDK does not expose it (oss2).
"""

import contextlib
import datetime
import email.utils
import re
from urllib.parse import quote, unquote

import oss2
import oss2.auth
import oss2.credentials
import oss2.utils
from alibabacloud_oss_v2.signer import SignerV1, SignerV4
from alibabacloud_oss_v2.types import Credentials as V2Credentials
from alibabacloud_oss_v2.types import HttpRequest, SigningContext

ENDPOINT_HOST = "oss-cn-hangzhou.aliyuncs.com"
SIGNER_HEADERS = ("date", "x-oss-date", "x-oss-content-sha256", "x-oss-security-token")
_V4_AUTH = re.compile(r"^OSS4-HMAC-SHA256 (.*)$")


def parse_v4_authorization(value):
    """`(credential, additional_headers, signature)` of a V4 Authorization header."""
    match = _V4_AUTH.match(value)
    if not match:
        return ("<not V4>", value, "")
    parts = dict(p.strip().split("=", 1) for p in match.group(1).split(","))
    return (parts.get("Credential"), parts.get("AdditionalHeaders", ""), parts.get("Signature"))


def normalize_authorization(version, value):
    return parse_v4_authorization(value) if version == "v4" else value


def signer_headers(headers):
    lowered = {k.lower(): v for k, v in headers.items()}
    return {k: lowered[k] for k in SIGNER_HEADERS if k in lowered}


def appended_params(url, original_query):
    """The decoded query parameters a presigner added to `url`."""
    original = {k for k, _ in original_query}
    query = url.split("?", 1)[1] if "?" in url else ""
    params = {}
    for pair in query.split("&"):
        if not pair:
            continue
        key, _, value = pair.partition("=")
        key, value = unquote(key), unquote(value)
        if key not in original:
            params[key] = value
    return params


def encoded_query(query):
    """RFC 3986 query string, the form alibabacloud-oss-v2's V4 signer reads back from the URL."""
    return "&".join(quote(k, safe="") + ("=" + quote(v, safe="") if v else "") for k, v in query)


def _at(case):
    return datetime.datetime.fromtimestamp(case["time"], datetime.timezone.utc)


# --------------------------------------------------------------------------------------------
# alibabacloud-oss-v2: SignerV1 / SignerV4 with SigningContext (its signer interface)
# --------------------------------------------------------------------------------------------

def sign_with_v2(case):
    path = "/".join(p for p in (case["bucket"], case["key"]) if p is not None)
    url = f"http://{ENDPOINT_HOST}/{quote(path)}"
    if case["query"]:
        url += "?" + encoded_query(case["query"])
    request = HttpRequest(case["method"], url, headers={k: v for k, v in case["headers"]})
    ctx = SigningContext(
        product="oss",
        region=case["region"],
        bucket=case["bucket"],
        key=case["key"],
        request=request,
        credentials=V2Credentials(case["access_key_id"], case["access_key_secret"], case["security_token"]),
        signing_time=_at(case),
        additional_headers=set(case["additional_headers"]) or None,
    )
    # Its V1 sub-resource list is per operation: the website operations add "website".
    ctx.sub_resource = ["website"] if any(k == "website" for k, _ in case["query"]) else []
    if case["presign"]:
        ctx.auth_method_query = True
        ctx.expiration_time = _at(case) + datetime.timedelta(seconds=case["expires"])
    signer = SignerV4() if case["version"] == "v4" else SignerV1()
    signer.sign(ctx)
    if case["presign"]:
        return {"params": appended_params(request.url, case["query"]), "string_to_sign": ctx.string_to_sign}
    return {
        "authorization": normalize_authorization(case["version"], request.headers["Authorization"]),
        "headers": signer_headers(request.headers),
        "string_to_sign": ctx.string_to_sign,
    }


# --------------------------------------------------------------------------------------------
# oss2: Auth / AuthV4 / StsAuth (and the provider-based classes they wrap)
# --------------------------------------------------------------------------------------------

@contextlib.contextmanager
def frozen_oss2_clock(unix):
    """oss2 reads the clock itself (time.time, datetime.utcnow, utils.http_date): pin all three."""
    saved = (oss2.auth.time, oss2.auth.datetime, oss2.utils.http_date)

    class FrozenTime:
        @staticmethod
        def time():
            return float(unix)

    class FrozenDatetime(datetime.datetime):
        @classmethod
        def utcnow(cls):
            return datetime.datetime.fromtimestamp(unix, datetime.timezone.utc).replace(tzinfo=None)

    oss2.auth.time = FrozenTime
    oss2.auth.datetime = FrozenDatetime
    oss2.utils.http_date = lambda timeval=None: email.utils.formatdate(
        unix if timeval is None else timeval, usegmt=True)
    try:
        yield
    finally:
        oss2.auth.time, oss2.auth.datetime, oss2.utils.http_date = saved


def _oss2_auth(case):
    ak, sk, token = case["access_key_id"], case["access_key_secret"], case["security_token"]
    v4 = case["version"] == "v4"
    if token is None:
        return oss2.AuthV4(ak, sk) if v4 else oss2.Auth(ak, sk)
    if not case["additional_headers"]:
        return oss2.StsAuth(ak, sk, token, auth_version="v4" if v4 else "v1")
    # StsAuth forwards no additional headers; its V4 implementation class takes them.
    return oss2.auth.ProviderAuthV4(oss2.credentials.StaticCredentialsProvider(ak, sk, token))


def _oss2_additional_for_header_signing(case):
    """The AdditionalHeaders list a correct caller passes to oss2's header signer: oss2 signs every
    name it is given (present or not) and sorts by first character only, so pass present, sorted,
    de-duplicated names."""
    present = {k.lower() for k, _ in case["headers"]}
    names = {n.lower() for n in case["additional_headers"]} & present
    return sorted(names) or None


def sign_with_oss2(case):
    auth = _oss2_auth(case)
    bucket, key = case["bucket"] or "", case["key"] or ""
    params = {k: v for k, v in case["query"]}
    headers = {k: v for k, v in case["headers"]}
    with frozen_oss2_clock(case["time"]):
        if case["presign"]:
            url = _oss2_presign(case, auth, bucket, key, params, headers)
            return {"params": appended_params(url, case["query"]), "string_to_sign": None}
        req = oss2.http.Request(case["method"], f"http://{ENDPOINT_HOST}/", params=params, headers=headers,
                                region=case["region"], product="oss")
        additional = _oss2_additional_for_header_signing(case) if case["version"] == "v4" else None
        if additional:
            auth._sign_request(req, bucket, key, in_additional_headers=additional)
        else:
            auth._sign_request(req, bucket, key)
    return {
        "authorization": normalize_authorization(case["version"], req.headers["authorization"]),
        "headers": signer_headers(req.headers),
        "string_to_sign": None,
    }


def _oss2_presign(case, auth, bucket, key, params, headers):
    additional = case["additional_headers"] or None
    if key:
        # Bucket.sign_url is oss2's documented presigning call (objects only).
        client = oss2.Bucket(auth, f"http://{ENDPOINT_HOST}", bucket, region=case["region"])
        if additional:
            return client.sign_url(case["method"], key, case["expires"], headers=headers, params=params,
                                   additional_headers=additional)
        return client.sign_url(case["method"], key, case["expires"], headers=headers, params=params)
    req = oss2.http.Request(case["method"], f"http://{ENDPOINT_HOST}/", params=params, headers=headers,
                            region=case["region"], product="oss")
    if additional:
        return auth._sign_url(req, bucket, key, case["expires"], in_additional_headers=additional)
    return auth._sign_url(req, bucket, key, case["expires"])


# --------------------------------------------------------------------------------------------
# ferry's answer, normalised the same way
# --------------------------------------------------------------------------------------------

def normalize_ferry(case, result):
    if case["presign"]:
        return {"params": {k: v for k, v in result["query"]}, "string_to_sign": result.get("string_to_sign")}
    headers = {k: v for k, v in result["headers"]}
    return {
        "authorization": normalize_authorization(case["version"], result["authorization"]),
        "headers": signer_headers(headers),
        "string_to_sign": result.get("string_to_sign"),
    }
