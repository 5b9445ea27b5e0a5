"""Bucket website configuration with a mirroring (back-to-origin) rule, as ferry's OSS→OSS
migrations use it, written and read back through each official SDK."""

import pytest

from sdk_clients import ServiceFailure

MIRROR_URL = "http://127.0.0.1:9/origin/"  # configuration only: nothing is fetched from it


def test_mirror_rule_put_get_delete(client, bucket):
    with pytest.raises(ServiceFailure) as err:
        client.get_website(bucket)
    assert (err.value.status, err.value.code) == (404, "NoSuchWebsiteConfiguration")

    client.put_mirror_website(bucket, MIRROR_URL, "images/")
    website = client.get_website(bucket)
    assert website["index"] == "index.html"
    assert website["rules"] == [
        {"number": 1, "prefix": "images/", "http_code": 404, "type": "Mirror", "mirror_url": MIRROR_URL},
    ]

    client.put_mirror_website(bucket, MIRROR_URL.replace("origin", "origin2"), "videos/")
    assert client.get_website(bucket)["rules"][0]["prefix"] == "videos/"  # replaced, not merged

    client.delete_website(bucket)
    with pytest.raises(ServiceFailure) as err:
        client.get_website(bucket)
    assert (err.value.status, err.value.code) == (404, "NoSuchWebsiteConfiguration")
