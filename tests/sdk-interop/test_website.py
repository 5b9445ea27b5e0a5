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


class _Origin:
    """A plain HTTP origin on loopback serving `files` (path → bytes), counting its GETs."""

    def __init__(self, files):
        import http.server
        import threading

        origin = self
        self.files, self.gets = files, 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                origin.gets += 1
                body = origin.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/origin/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_a_get_of_a_missing_key_is_served_through_the_mirror_and_stored(client, bucket):
    body = bytes(range(256)) * 40
    origin = _Origin({"/origin/images/a.jpg": body, "/origin/images/b.jpg": b"b"})
    try:
        client.put_mirror_website(bucket, origin.url, "images/")
        data, headers = client.get(bucket, "images/a.jpg")  # the SDK checks the CRC-64
        assert data == body
        assert headers["content-type"] == "image/jpeg"
        assert origin.gets == 1
        # Stored: read again from OSS, not from the origin, even once the origin changed.
        origin.files["/origin/images/a.jpg"] = b"changed at the origin"
        assert client.get(bucket, "images/a.jpg")[0] == body
        assert origin.gets == 1
        # A HEAD never fetches; a key the origin lacks stays missing; so does one outside the rule.
        for key in ["images/b.jpg", "images/none.jpg", "other/a.jpg"]:
            with pytest.raises(ServiceFailure) as err:
                if key == "images/b.jpg":
                    client.head(bucket, key)
                else:
                    client.get(bucket, key)
            assert err.value.status == 404, key
        assert origin.gets == 2  # only images/none.jpg asked the origin
    finally:
        origin.close()
