"""Credentials and error answers through each official SDK: STS tokens work; a wrong secret,
AccessKey id or (V4) region is refused; forbid-overwrite and a bad Content-MD5 give the OSS
error codes the SDKs and users act on."""

import base64
import hashlib

import pytest

from conftest import ACCESS_KEY_ID, ACCESS_KEY_SECRET, REGION
from sdk_clients import ServiceFailure, make_client

STS_TOKEN = "CAIS+sts/token==with-odd_chars.0123456789"


def _client(sdk, emulator, **overrides):
    name, version = sdk
    args = dict(access_key_id=ACCESS_KEY_ID, access_key_secret=ACCESS_KEY_SECRET, security_token=None,
                region=REGION)
    args.update(overrides)
    return make_client(name, emulator.endpoint, version, **args)


def test_sts_token_credentials(sdk, emulator, bucket):
    sts = _client(sdk, emulator, security_token=STS_TOKEN)
    sts.put(bucket, "sts/obj 1", b"via sts")
    assert sts.get(bucket, "sts/obj 1")[0] == b"via sts"
    assert sts.list_v2(bucket, prefix="sts/").keys == ["sts/obj 1"]
    sts.delete(bucket, "sts/obj 1")
    assert sts.list_v1(bucket).keys == []


def test_wrong_secret_is_signature_does_not_match(sdk, emulator, bucket):
    wrong = _client(sdk, emulator, access_key_secret=ACCESS_KEY_SECRET + "x")
    for call in (lambda: wrong.put(bucket, "k", b"x"), lambda: wrong.list_v2(bucket)):
        with pytest.raises(ServiceFailure) as err:
            call()
        assert (err.value.status, err.value.code) == (403, "SignatureDoesNotMatch")


def test_wrong_access_key_id_is_refused(sdk, emulator, bucket):
    wrong = _client(sdk, emulator, access_key_id="LTAI5tNoSuchKey")
    with pytest.raises(ServiceFailure) as err:
        wrong.list_v2(bucket)
    assert (err.value.status, err.value.code) == (403, "InvalidAccessKeyId")


def test_wrong_region(sdk, emulator, bucket, client):
    other = _client(sdk, emulator, region="cn-shanghai")
    if client.version == "v1":
        # V1 does not sign the region: the request is valid.
        other.put(bucket, "region.txt", b"ok")
        return
    with pytest.raises(ServiceFailure) as err:
        other.put(bucket, "region.txt", b"rejected")
    assert err.value.status in (400, 403), err.value
    assert err.value.code in ("InvalidArgument", "SignatureDoesNotMatch", "AccessDenied"), err.value
    assert client.list_v2(bucket).keys == []


def test_forbid_overwrite(client, bucket):
    client.put(bucket, "once.txt", b"first")
    with pytest.raises(ServiceFailure) as err:
        client.put(bucket, "once.txt", b"second", forbid_overwrite=True)
    assert (err.value.status, err.value.code) == (409, "FileAlreadyExists")
    assert client.get(bucket, "once.txt")[0] == b"first"
    client.put(bucket, "once.txt", b"third", forbid_overwrite=False)
    assert client.get(bucket, "once.txt")[0] == b"third"
    client.put(bucket, "new.txt", b"fresh", forbid_overwrite=True)  # no existing object: fine
    assert client.get(bucket, "new.txt")[0] == b"fresh"


def test_bad_content_md5_is_invalid_digest(client, bucket):
    wrong_md5 = base64.b64encode(hashlib.md5(b"something else").digest()).decode()
    with pytest.raises(ServiceFailure) as err:
        client.put(bucket, "digest.txt", b"payload", content_md5=wrong_md5)
    assert (err.value.status, err.value.code) == (400, "InvalidDigest")
    assert client.list_v2(bucket).keys == []  # nothing was stored
    right_md5 = base64.b64encode(hashlib.md5(b"payload").digest()).decode()
    client.put(bucket, "digest.txt", b"payload", content_md5=right_md5)
    assert client.get(bucket, "digest.txt")[0] == b"payload"


def test_missing_bucket_and_key(client, bucket):
    with pytest.raises(ServiceFailure) as err:
        client.get(bucket, "no/such/key")
    assert (err.value.status, err.value.code) == (404, "NoSuchKey")
    with pytest.raises(ServiceFailure) as err:
        client.list_v2(bucket + "-missing")
    assert (err.value.status, err.value.code) == (404, "NoSuchBucket")
