"""ferry's signer against the official Python SDKs' signers on ≥ 500 generated requests.

Each case (see `signing_cases` for what is varied and what is deliberately left out) is signed by
ferry (`sign_requests` example), by alibabacloud-oss-v2 (SignerV1/SignerV4) and by oss2
(Auth/AuthV4/StsAuth, Bucket.sign_url), all at the case's fixed time, and every answer must be
identical: same Authorization (or presigned query parameters), same signer-added headers, and —
where the SDK exposes it — the same string to sign.
"""

import collections

import pytest

import reference_signers as ref
import signing_cases

CASES = signing_cases.generate(count=600)


@pytest.fixture(scope="module")
def ferry_results():
    from ferry_tools import ferry_sign

    results = ferry_sign(CASES)
    failed = [r for r in results if not r.get("ok")]
    assert not failed, f"ferry refused {len(failed)} generated requests, first: {failed[0]}"
    return {r["id"]: ref.normalize_ferry(CASES[r["id"]], r) for r in results}


def _describe(case):
    mode = "presign" if case["presign"] else "header"
    sts = "+sts" if case["security_token"] else ""
    extra = "+additional" if case["additional_headers"] else ""
    return f"#{case['id']} {case['version']} {mode}{sts}{extra} {case['method']} {case['bucket']}/{case['key']!r}"


def _mismatch(case, sdk, ours, theirs):
    lines = [f"{_describe(case)}: ferry differs from {sdk}"]
    for field in sorted(set(ours) | set(theirs)):
        if ours.get(field) != theirs.get(field):
            lines.append(f"  {field}:\n    ferry: {ours.get(field)!r}\n    {sdk}: {theirs.get(field)!r}")
    lines.append(f"  query={case['query']!r}\n  headers={case['headers']!r}\n"
                 f"  additional={case['additional_headers']!r}")
    return "\n".join(lines)


def _compare(case, sdk, ours, theirs):
    """None if equal, else a readable description of the difference."""
    ours = dict(ours)
    theirs = dict(theirs)
    if theirs.get("string_to_sign") is None:
        ours.pop("string_to_sign", None)
        theirs.pop("string_to_sign", None)
    if "headers" in theirs:
        # oss2 V4 sends no Date header; compare the dates an SDK does send, and every x-oss-* one.
        ours["headers"] = {k: v for k, v in ours["headers"].items()
                           if k.startswith("x-oss-") or k in theirs["headers"]}
    return None if ours == theirs else _mismatch(case, sdk, ours, theirs)


def _v2_applies(case):
    # alibabacloud-oss-v2 sends the V1 STS token as an unsigned `security-token` header.
    return not (case["version"] == "v1" and not case["presign"] and case["security_token"])


def test_generated_cases_are_varied():
    """The generator really covers what the test claims to cover."""
    combos = collections.Counter((c["version"], c["presign"], c["security_token"] is not None) for c in CASES)
    assert len(combos) == 8 and min(combos.values()) >= 25, combos
    keys = [c["key"] for c in CASES if c["key"]]
    assert any(not k.isascii() for k in keys)
    for needle in [" ", "+", "%", "?", "#", "//"]:
        assert any(needle in k for k in keys), needle
    assert any(k.endswith("/") for k in keys)
    assert any(len(k.encode()) > 900 for k in keys)
    query_keys = {k for c in CASES for k, _ in c["query"]}
    for needle in ["uploads", "uploadId", "partNumber", "acl", "restore", "tagging", "website", "versionId",
                   "continuation-token", "response-content-disposition", "prefix", "max-keys", "list-type",
                   "delimiter", "marker", "start-after"]:
        assert needle in query_keys, needle
    assert sum(1 for c in CASES if c["version"] == "v4" and c["additional_headers"]) >= 50
    assert {c["method"] for c in CASES} == {"GET", "PUT", "POST", "DELETE", "HEAD"}


@pytest.mark.parametrize("sdk", ["alibabacloud-oss-v2", "oss2"])
def test_ferry_signs_like_the_official_sdk(sdk, ferry_results):
    mismatches = []
    compared = 0
    for case in CASES:
        if sdk == "alibabacloud-oss-v2":
            if not _v2_applies(case):
                continue
            theirs = ref.sign_with_v2(case)
        else:
            theirs = ref.sign_with_oss2(case)
        compared += 1
        problem = _compare(case, sdk, ferry_results[case["id"]], theirs)
        if problem:
            mismatches.append(problem)
    assert compared >= 500
    assert not mismatches, f"{len(mismatches)} of {compared} requests differ:\n\n" + "\n\n".join(mismatches[:8])


def test_sdks_agree_with_each_other():
    """Sanity check of the harness: where both SDKs apply, they must produce the same signature,
    otherwise a case is one the SDKs disagree on and does not belong in the generator."""
    disagreements = []
    for case in CASES:
        if not _v2_applies(case):
            continue
        a, b = ref.sign_with_v2(case), ref.sign_with_oss2(case)
        a.pop("string_to_sign"), b.pop("string_to_sign")
        if "headers" in a:
            a["headers"] = {k: v for k, v in a["headers"].items() if k in b["headers"]}
        if a != b:
            disagreements.append(_mismatch(case, "oss2 (vs alibabacloud-oss-v2 as 'ferry')", a, b))
    assert not disagreements, f"{len(disagreements)} cases:\n\n" + "\n\n".join(disagreements[:5])
