"""Archive objects through each official SDK: GET is refused with InvalidObjectState until a
RestoreObject finishes, then works. This module runs its own emulator with a short restore delay
(`--restore-delay-ms`) so the test waits well under a second per SDK."""

import time

import pytest

from conftest import ACCESS_KEY_ID, ACCESS_KEY_SECRET, REGION, new_bucket_name, start_emulator
from sdk_clients import ServiceFailure, make_client

RESTORE_DELAY_MS = 600
WAIT_LIMIT_S = 15


@pytest.fixture(scope="module")
def restore_emulator(emulator_bin):
    emu = start_emulator(emulator_bin, "--restore-delay-ms", str(RESTORE_DELAY_MS))
    yield emu
    emu.stop()


@pytest.fixture
def archive_client(sdk, restore_emulator):
    name, version = sdk
    return make_client(name, restore_emulator.endpoint, version, ACCESS_KEY_ID, ACCESS_KEY_SECRET, region=REGION)


def test_archive_object_is_readable_only_after_restore(archive_client, restore_emulator):
    client = archive_client
    bucket = new_bucket_name("restore")
    client.create_bucket(bucket)
    key = "cold/archived 中文.bin"
    body = b"frozen bytes " * 1000
    try:
        client.put(bucket, key, body, storage_class="Archive")
        head = client.head(bucket, key)
        assert head["x-oss-storage-class"] == "Archive"
        assert "x-oss-restore" not in head

        with pytest.raises(ServiceFailure) as err:
            client.get(bucket, key)
        assert (err.value.status, err.value.code) == (403, "InvalidObjectState")

        started = time.monotonic()
        assert client.restore(bucket, key) == 202
        assert client.head(bucket, key)["x-oss-restore"] == 'ongoing-request="true"'
        with pytest.raises(ServiceFailure) as err:
            client.restore(bucket, key)
        assert (err.value.status, err.value.code) == (409, "RestoreAlreadyInProgress")
        with pytest.raises(ServiceFailure) as err:
            client.get(bucket, key)
        assert (err.value.status, err.value.code) == (403, "InvalidObjectState")

        while True:
            restore = client.head(bucket, key).get("x-oss-restore", "")
            if restore.startswith('ongoing-request="false"'):
                break
            assert time.monotonic() - started < WAIT_LIMIT_S, f"restore still {restore!r}"
            time.sleep(0.1)
        assert time.monotonic() - started >= RESTORE_DELAY_MS / 1000 * 0.9
        assert "expiry-date=" in restore

        data, headers = client.get(bucket, key)
        assert data == body
        assert headers["x-oss-storage-class"] == "Archive"
        assert client.restore(bucket, key) == 200  # already restored: extends, answers 200
    finally:
        restore_emulator.admin("DELETE", f"buckets/{bucket}")
