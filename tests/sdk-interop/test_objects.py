"""Object basics through each official SDK (V4 and V1): awkward keys, ranged reads, metadata and
content headers, copy, object tags. Each test runs once per SDK × signature version (see
conftest)."""

import base64
import hashlib

import pytest

from crc64 import crc64
from sdk_clients import ServiceFailure

AWKWARD_KEYS = [
    "unicode/中文/файл-😀.txt",
    "with space/and  two  spaces.txt",
    "plus+sign+file",
    "percent%20literal%",
    "question?mark.txt",
    "hash#fragment.txt",
    "a//b",
    "trailing/slash/",
    "mixed ?#+%&=;:@$,!'()*[]~ chars",
    "d/" + "x" * 998,  # 1000 bytes
]


def _body(key):
    return hashlib.sha256(key.encode()).digest() * 37 + key.encode()


def _md5_etag(data):
    return hashlib.md5(data).hexdigest().upper()


def test_awkward_keys_round_trip(client, bucket):
    assert len(AWKWARD_KEYS[-1].encode()) == 1000
    for key in AWKWARD_KEYS:
        result = client.put(bucket, key, _body(key))
        assert result["crc64"] == crc64(_body(key)), key

    for key in AWKWARD_KEYS:
        data, headers = client.get(bucket, key)
        assert data == _body(key), key
        assert int(headers["x-oss-hash-crc64ecma"]) == crc64(data), key
        head = client.head(bucket, key)
        assert int(head["content-length"]) == len(_body(key)), key
        assert head["etag"].strip('"').upper() == _md5_etag(_body(key)), key

    expected = sorted(AWKWARD_KEYS)  # code-point order is UTF-8 byte order
    assert client.list_v2(bucket, max_keys=1000).keys == expected
    assert client.list_v1(bucket, max_keys=1000).keys == expected
    for key in AWKWARD_KEYS:
        assert client.list_v2(bucket, prefix=key).keys[0] == key, key

    for key in AWKWARD_KEYS:
        client.delete(bucket, key)
    assert client.list_v2(bucket).keys == []
    with pytest.raises(ServiceFailure) as err:
        client.get(bucket, AWKWARD_KEYS[0])
    assert (err.value.status, err.value.code) == (404, "NoSuchKey")
    with pytest.raises(ServiceFailure) as err:
        client.head(bucket, AWKWARD_KEYS[1])
    assert err.value.status == 404


@pytest.mark.parametrize("byte_range, expected_slice, content_range", [
    ((0, 9), slice(0, 10), "bytes 0-9/1000"),
    ((100, 199), slice(100, 200), "bytes 100-199/1000"),
    ((990, None), slice(990, 1000), "bytes 990-999/1000"),
    ((None, 10), slice(990, 1000), "bytes 990-999/1000"),
    ((999, 999), slice(999, 1000), "bytes 999-999/1000"),
])
def test_ranged_get(client, bucket, byte_range, expected_slice, content_range):
    body = bytes(range(256)) * 3 + b"z" * 232
    assert len(body) == 1000
    client.put(bucket, "ranged.bin", body)
    data, headers = client.get(bucket, "ranged.bin", byte_range=byte_range)
    assert data == body[expected_slice]
    assert headers["content-range"] == content_range
    # OSS reports the whole object's CRC-64 even for a range.
    assert int(headers["x-oss-hash-crc64ecma"]) == crc64(body)


def test_metadata_and_content_headers_round_trip(client, bucket):
    body = b"report body\n" * 10
    client.put(bucket, "docs/report 1.txt", body,
               content_type="text/plain; charset=utf-8",
               metadata={"author": "Alice Smith", "project": "ferry-1", "Mixed-Case": "Value"},
               cache_control="no-cache",
               content_disposition='attachment; filename="report 1.txt"',
               content_encoding="identity",
               expires="Thu, 01 Dec 2094 16:00:00 GMT")
    for headers in (client.head(bucket, "docs/report 1.txt"), client.get(bucket, "docs/report 1.txt")[1]):
        assert headers["content-type"] == "text/plain; charset=utf-8"
        assert headers["x-oss-meta-author"] == "Alice Smith"
        assert headers["x-oss-meta-project"] == "ferry-1"
        assert headers["x-oss-meta-mixed-case"] == "Value"  # OSS lower-cases metadata names
        assert headers["cache-control"] == "no-cache"
        assert headers["content-disposition"] == 'attachment; filename="report 1.txt"'
        assert headers["content-encoding"] == "identity"
        assert headers["expires"] == "Thu, 01 Dec 2094 16:00:00 GMT"
        assert headers["x-oss-object-type"] == "Normal"
        assert headers["x-oss-storage-class"] == "Standard"
        assert headers["content-md5"] == base64.b64encode(hashlib.md5(body).digest()).decode()


def test_copy_object_keeps_bytes_and_metadata(client, bucket):
    src, dst = "src/中文 +%?#.bin", "dst/copy of 中文 +%?#.bin"
    body = bytes(range(256)) * 40
    client.put(bucket, src, body, content_type="application/x-test", metadata={"origin": "copy-test"})
    client.copy(bucket, src, dst)
    data, headers = client.get(bucket, dst)
    assert data == body
    assert headers["content-type"] == "application/x-test"
    assert headers["x-oss-meta-origin"] == "copy-test"
    assert client.list_v2(bucket, prefix="dst/").keys == [dst]
    # The source is untouched.
    assert client.get(bucket, src)[0] == body


def test_object_tagging_put_get_delete(client, bucket):
    key = "tags/中文 obj+1"
    client.put(bucket, key, b"tagged", tagging="a=1&b=two%20words")  # x-oss-tagging
    assert client.get_tagging(bucket, key) == [("a", "1"), ("b", "two words")]
    assert client.head(bucket, key)["x-oss-tagging-count"] == "2"

    tags = [(" 中文 key ", "v +-=._:/"), ("empty", "")]
    assert client.put_tagging(bucket, key, tags) == 200
    assert client.get_tagging(bucket, key) == tags
    assert client.put_tagging(bucket, key, [("only", "1")]) == 200  # replaces, not merges
    assert client.get_tagging(bucket, key) == [("only", "1")]
    assert client.head(bucket, key)["x-oss-tagging-count"] == "1"
    assert client.get(bucket, key)[0] == b"tagged"

    assert client.delete_tagging(bucket, key) == 204
    assert client.get_tagging(bucket, key) == []
    assert "x-oss-tagging-count" not in client.head(bucket, key)


def test_object_tagging_limits_and_errors(client, bucket):
    client.put(bucket, "t", b"x")
    ten = [(f"k{i}", "v" * 256) for i in range(9)] + [("k" * 128, "v")]
    assert client.put_tagging(bucket, "t", ten) == 200
    refused = [
        (ten + [("k10", "v")], "BadRequest"),
        ([("k" * 129, "v")], "InvalidTag"),
        ([("k", "v" * 257)], "InvalidTag"),
        ([("k", "50%")], "InvalidTag"),
        ([("a&b", "v")], "InvalidTag"),
    ]
    for tags, code in refused:
        with pytest.raises(ServiceFailure) as err:
            client.put_tagging(bucket, "t", tags)
        assert (err.value.status, err.value.code) == (400, code), tags[-1][0][:20]
    assert client.get_tagging(bucket, "t") == ten  # a refused set changes nothing

    for call in (lambda: client.get_tagging(bucket, "missing"),
                 lambda: client.put_tagging(bucket, "missing", [("a", "1")]),
                 lambda: client.delete_tagging(bucket, "missing")):
        with pytest.raises(ServiceFailure) as err:
            call()
        assert (err.value.status, err.value.code) == (404, "NoSuchKey")


def test_list_buckets_sees_the_new_bucket(client, bucket):
    assert bucket in client.list_buckets()
