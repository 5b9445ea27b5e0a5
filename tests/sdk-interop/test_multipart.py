"""Multipart upload through each official SDK: interrupted, resumed from ListParts, completed,
and checked byte for byte and by CRC-64 (the SDKs check part CRCs themselves; oss2 also checks
the combined CRC at completion when it knows every part's CRC)."""

import random

import pytest
from alibabacloud_oss_v2.crc import Crc64 as SdkCrc64

from crc64 import crc64
from sdk_clients import ServiceFailure

PART_SIZE = 100 * 1024 + 7  # OSS's minimum part size is 100 KiB (except the last part)


def _source():
    data = random.Random(20240611).randbytes(3 * PART_SIZE + 12345)
    return data, [data[i:i + PART_SIZE] for i in range(0, len(data), PART_SIZE)]


def _object_counts(emulator, bucket, key):
    counts = {}
    for row in emulator.counters().get("by_object", []):
        if row["bucket"] == bucket and row["key"] == key:
            counts[row["operation"]] = counts.get(row["operation"], 0) + row["count"]
    return counts


def _list_all_parts(client, bucket, key, upload_id):
    parts, marker = [], 0
    for _ in range(20):
        page, truncated, marker = client.list_parts(bucket, key, upload_id, marker=marker, max_parts=1)
        assert len(page) <= 1
        parts.extend(page)
        if not truncated:
            return parts
    raise AssertionError("ListParts pagination did not end")


def test_interrupted_upload_resumes_from_list_parts(client, bucket, emulator):
    key = "big/multipart 中文+%.bin"
    data, chunks = _source()
    assert len(chunks) == 4
    upload_id = client.init_multipart(bucket, key, metadata={"stage": "resumed"})

    # First run: two parts, then the uploader dies and forgets everything but the upload id.
    first_run = [client.upload_part(bucket, key, upload_id, n, chunks[n - 1]) for n in (1, 2)]

    # Second run: rediscover what is there (one part per page, to exercise pagination).
    listed = _list_all_parts(client, bucket, key, upload_id)
    assert [(p.number, p.size) for p in listed] == [(1, PART_SIZE), (2, PART_SIZE)]
    assert [p.etag.strip('"') for p in listed] == [p.etag.strip('"') for p in first_run]
    for p in listed:
        if p.crc is not None:  # alibabacloud-oss-v2 exposes HashCrc64ecma; oss2 does not
            assert p.crc == crc64(chunks[p.number - 1])
        else:
            p.crc = crc64(chunks[p.number - 1])  # a resuming uploader re-reads its source
    rest = [client.upload_part(bucket, key, upload_id, n, chunks[n - 1]) for n in (3, 4)]

    parts = listed + rest
    combined = 0
    for p in parts:
        combined = SdkCrc64.combine(combined, p.crc, p.size)
    assert combined == crc64(data)

    object_crc = client.complete(bucket, key, upload_id, parts)
    assert object_crc == crc64(data)

    got, headers = client.get(bucket, key)
    assert got == data
    assert int(headers["x-oss-hash-crc64ecma"]) == crc64(data)
    assert headers["x-oss-object-type"] == "Multipart"
    assert headers["x-oss-meta-stage"] == "resumed"
    assert _object_counts(emulator, bucket, key).get("UploadPart") == 4  # nothing was sent twice

    with pytest.raises(ServiceFailure) as err:
        client.list_parts(bucket, key, upload_id)
    assert (err.value.status, err.value.code) == (404, "NoSuchUpload")


def test_abort_discards_the_upload(client, bucket):
    key = "aborted.bin"
    _, chunks = _source()
    upload_id = client.init_multipart(bucket, key)
    client.upload_part(bucket, key, upload_id, 1, chunks[0])
    client.abort(bucket, key, upload_id)
    with pytest.raises(ServiceFailure) as err:
        client.list_parts(bucket, key, upload_id)
    assert (err.value.status, err.value.code) == (404, "NoSuchUpload")
    assert client.list_v2(bucket).keys == []
