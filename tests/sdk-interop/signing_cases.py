"""Deterministic generator of varied OSS requests for the differential signing test.

Each case is a plain dict in the input format of ferry's `sign_requests` example (keys and query
values decoded), so the same case can be handed to ferry and to the official SDK signers.

Inputs the official SDKs themselves disagree on are never generated, so a mismatch always means
ferry differs from every SDK that is compared:

* header values with leading/trailing whitespace, and empty header values (oss2 and
  alibabacloud-oss-v2 sign values untrimmed, GoV2 and ferry trim; alibabacloud-oss-v2 drops
  empty-valued AdditionalHeaders, oss2 keeps them; see vector V4-X5 in
  shared/tests/it/data/oss-signing-extra-vectors.json);
* duplicate header names or query keys (both Python SDKs keep them in dicts);
* two AdditionalHeaders names with the same first letter (oss2 sorts them by first character
  only), names outside the request in oss2 header signing (oss2 signs them anyway);
* V4 presign lifetimes above seven days (ferry clamps to OSS's cap, the SDKs do not);
* V1 header signing with an STS token through alibabacloud-oss-v2 (it sends the token in an
  unsigned `security-token` header); oss2 covers that combination.
"""

import base64
import hashlib
import random

SEED = 20240611
REGIONS = ["cn-hangzhou", "cn-shanghai", "ap-southeast-1", "us-west-1"]
BUCKETS = ["examplebucket", "ferry-test-01", "a1b", "bucket-name-with-63-chars-" + "x" * 37]
METHODS = ["GET", "PUT", "POST", "DELETE", "HEAD"]

KEY_WORDS = ["a", "photos", "2024", "file.txt", "x_y-z", "~tilde", "UPPER", "report.final.pdf"]
KEY_SPECIALS = [" ", "+", "%", "%20", "%2F", "?", "#", "&", "=", ";", ",", "@", ":", "$", "!", "'",
                "(", ")", "*", "[", "]", '"', "<", ">", "|", "\\", "^", "`", "{", "}", "  "]
KEY_UNICODE = ["中文", "é", "ß", "Ünïcödé", "😀", "ж", "か", "ﬁ", "\u00a0"]

SUBRESOURCE_SETS = [
    [("uploads", "")],
    [("uploadId", "0004B999EF5A239BB9138C6227D69F95"), ("partNumber", "3")],
    [("uploadId", "upload+id/with=odd&chars")],
    [("acl", "")],
    [("restore", "")],
    [("tagging", "")],
    [("website", "")],
    [("versionId", "CAEQNhiBgM0BYiIDc4MGZjZGI2OTBjOTRmNTE5NmU5NmFkMjY2NDM3NDQy")],
    [("response-content-disposition", 'attachment; filename="a b+c.txt"')],
    [("response-content-type", "text/plain; charset=utf-8"), ("response-cache-control", "no-cache")],
    [("response-expires", "Thu, 01 Dec 1994 16:00:00 GMT"), ("response-content-language", "zh-CN")],
    [("response-content-encoding", "gzip")],
]
# Additional-header candidates: all absent from V4's default set, all with distinct initials.
ADDITIONAL_CANDIDATES = ["Range", "Content-Disposition", "If-Match", "Accept-Language", "Expires"]


def _key(rng):
    parts = []
    for _ in range(rng.randint(1, 6)):
        pool = rng.choice([KEY_WORDS, KEY_WORDS, KEY_SPECIALS, KEY_UNICODE])
        parts.append(rng.choice(pool))
        if rng.random() < 0.35:
            parts.append(rng.choice(["/", "/", "//"]))
    key = "".join(parts)
    if rng.random() < 0.15:
        key += "/"
    if rng.random() < 0.03:
        key = ("k" * 40 + "/") * 24 + "end"  # a ~1000-byte key
    # OSS keys cannot start with "/" or "\"; oss2's strict mode refuses a leading "?".
    return "k" + key if key[0] in "/\\?" else key


def _token(rng, length):
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
    return "".join(rng.choice(alphabet) for _ in range(length))


def _listing_params(rng):
    params = []
    if rng.random() < 0.5:
        params.append(("list-type", "2"))
        if rng.random() < 0.5:
            params.append(("continuation-token", _token(rng, 28)))
        if rng.random() < 0.3:
            params.append(("start-after", _key(rng)))
    elif rng.random() < 0.5:
        params.append(("marker", _key(rng)))
    if rng.random() < 0.6:
        params.append(("prefix", _key(rng)))
    if rng.random() < 0.5:
        params.append(("delimiter", "/"))
    if rng.random() < 0.5:
        params.append(("max-keys", str(rng.randint(1, 1000))))
    if rng.random() < 0.3:
        params.append(("encoding-type", "url"))
    return params


def _service_params(rng):
    """ListBuckets parameters (none of them is a V1 sub-resource)."""
    params = [("prefix", _key(rng)), ("marker", _key(rng)), ("max-keys", str(rng.randint(1, 1000)))]
    return rng.sample(params, k=rng.randint(0, 3))


def _query(rng, has_key):
    query = []
    if rng.random() < 0.6:
        query.extend(rng.choice(SUBRESOURCE_SETS))
    if not has_key or rng.random() < 0.3:
        query.extend(_listing_params(rng))
    seen = set()
    unique = []
    for k, v in query:
        if k not in seen:
            seen.add(k)
            unique.append((k, v))
    rng.shuffle(unique)
    return unique


def _case_name(rng, name):
    return rng.choice([name, name.lower(), name.upper(), name.title()])


def _headers(rng):
    headers = []
    if rng.random() < 0.5:
        headers.append((_case_name(rng, "Content-Type"), rng.choice(
            ["text/plain", "application/octet-stream", "application/xml", "text/html; charset=utf-8"])))
    if rng.random() < 0.4:
        digest = hashlib.md5(rng.randbytes(16)).digest()
        headers.append((_case_name(rng, "Content-MD5"), base64.b64encode(digest).decode()))
    for i in range(rng.choice([0, 0, 1, 2, 3])):
        name = rng.choice(["author", "owner", "x", "long-name-1", "a9"]) + str(i)
        value = rng.choice(["alice", "bob smith", "a:b,c=d", "v" * 60, "quote\"inside", "tab\tinside"])
        headers.append((_case_name(rng, "x-oss-meta-" + name), value))
    if rng.random() < 0.2:
        headers.append(("x-oss-storage-class", rng.choice(["Standard", "IA", "Archive", "ColdArchive"])))
    if rng.random() < 0.15:
        src = _key(rng).encode()
        quoted = "".join(chr(b) if chr(b).isalnum() or chr(b) in "-_.~/" else f"%{b:02X}" for b in src)
        headers.append((_case_name(rng, "x-oss-copy-source"), f"/{rng.choice(BUCKETS)}/{quoted}"))
        headers.append(("x-oss-metadata-directive", rng.choice(["COPY", "REPLACE"])))
    if rng.random() < 0.15:
        headers.append((_case_name(rng, "x-oss-forbid-overwrite"), rng.choice(["true", "false"])))
    # Headers V4 signs only when asked to (AdditionalHeaders); V1 never signs them.
    if rng.random() < 0.3:
        headers.append(("Range", f"bytes={rng.randint(0, 99)}-{rng.randint(100, 9999)}"))
    if rng.random() < 0.2:
        headers.append(("Content-Disposition", 'attachment; filename="x y.txt"'))
    if rng.random() < 0.15:
        headers.append(("If-Match", '"5B3C1A2E053D763E1B002CC607C5A0FE"'))
    if rng.random() < 0.1:
        headers.append(("Accept-Language", "en-US,zh;q=0.8"))
    if rng.random() < 0.1:
        headers.append(("Cache-Control", "no-cache"))
    rng.shuffle(headers)
    return headers


def _additional(rng, headers):
    if rng.random() < 0.5:
        return []
    present = [n for n, _ in headers if n in ADDITIONAL_CANDIDATES]
    names = rng.sample(present, k=rng.randint(0, len(present))) if present else []
    if rng.random() < 0.3:
        names.append(rng.choice(ADDITIONAL_CANDIDATES))  # may be absent from the request
    if rng.random() < 0.2:
        names.append(rng.choice(["x-oss-meta-author0", "content-type", "Content-MD5"]))  # signed anyway
    return [_case_name(rng, n) for n in names]


def generate(count=600, seed=SEED):
    """`count` varied requests, the same ones on every run."""
    rng = random.Random(seed)
    cases = []
    for i in range(count):
        version = "v4" if i % 2 == 0 else "v1"
        presign = rng.random() < 0.35
        level = rng.random()
        if level < 0.04:
            bucket, key = None, None
        elif level < 0.3:
            bucket, key = rng.choice(BUCKETS), None
        else:
            bucket, key = rng.choice(BUCKETS), _key(rng)
        method = "GET" if bucket is None else rng.choice(METHODS)
        headers = _headers(rng) if bucket is not None else []
        sts = rng.random() < 0.35
        cases.append({
            "id": i,
            "version": version,
            "method": method,
            "bucket": bucket,
            "key": key,
            "query": [list(p) for p in (_query(rng, key is not None) if bucket else _service_params(rng))],
            "headers": [list(h) for h in headers],
            "access_key_id": ("STS." if sts else "LTAI5t") + _token(rng, 16).replace("/", "x").replace("+", "y"),
            "access_key_secret": _token(rng, 30),
            "security_token": _token(rng, rng.randint(20, 300)) if sts else None,
            "region": rng.choice(REGIONS),
            "time": rng.randint(1_600_000_000, 1_900_000_000),
            "presign": presign,
            "expires": rng.choice([1, 60, 900, 3600, 86400, 604800]) if presign else 0,
            "additional_headers": _additional(rng, headers) if version == "v4" else [],
        })
    return cases
