"""ListObjects (v1) and ListObjectsV2 through each official SDK: prefix, delimiter, pagination
with marker / continuation token, start-after; awkward characters in keys and prefixes."""

import pytest

KEYS = [
    "docs/x.txt",
    "docs/y/z.txt",
    "photos/2024/a.jpg",
    "photos/2024/b.jpg",
    "photos/2025/c.jpg",
    "photos/top.jpg",
    "plus+/k",
    "readme",
    "sp ace/k 1",
    "sp ace/k 2",
    "中文/一.txt",
    "中文/二.txt",
]


@pytest.fixture
def filled(client, bucket):
    for key in KEYS:
        client.put(bucket, key, key.encode())
    return bucket


def _pages_v1(client, bucket, **kw):
    pages, marker = [], ""
    for _ in range(50):
        page = client.list_v1(bucket, marker=marker, **kw)
        pages.append(page)
        if not page.truncated:
            return pages
        assert page.next_marker, "a truncated v1 listing must give NextMarker"
        marker = page.next_marker
    raise AssertionError("v1 pagination did not end")


def _pages_v2(client, bucket, **kw):
    pages, token = [], ""
    for _ in range(50):
        page = client.list_v2(bucket, token=token, **kw)
        pages.append(page)
        if not page.truncated:
            return pages
        assert page.next_marker, "a truncated v2 listing must give NextContinuationToken"
        token = page.next_marker
    raise AssertionError("v2 pagination did not end")


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_prefix_and_delimiter(client, filled, api):
    list_ = client.list_v1 if api == "v1" else client.list_v2
    root = list_(filled, delimiter="/")
    assert root.keys == ["readme"]
    assert root.prefixes == ["docs/", "photos/", "plus+/", "sp ace/", "中文/"]
    photos = list_(filled, prefix="photos/", delimiter="/")
    assert photos.keys == ["photos/top.jpg"]
    assert photos.prefixes == ["photos/2024/", "photos/2025/"]
    assert list_(filled, prefix="中文/").keys == ["中文/一.txt", "中文/二.txt"]
    assert list_(filled, prefix="sp ace/").keys == ["sp ace/k 1", "sp ace/k 2"]
    assert list_(filled, prefix="plus+").keys == ["plus+/k"]
    assert list_(filled, prefix="nothing-here/").keys == []
    assert list_(filled).keys == sorted(KEYS)


@pytest.mark.parametrize("api", ["v1", "v2"])
@pytest.mark.parametrize("max_keys", [1, 2, 5])
def test_pagination_visits_every_key_once(client, filled, api, max_keys):
    pages = (_pages_v1 if api == "v1" else _pages_v2)(client, filled, max_keys=max_keys)
    seen = [k for p in pages for k in p.keys]
    assert seen == sorted(KEYS)
    assert all(len(p.keys) <= max_keys for p in pages)
    assert len(pages) == -(-len(KEYS) // max_keys)


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_pagination_with_delimiter_counts_prefixes(client, filled, api):
    pages = (_pages_v1 if api == "v1" else _pages_v2)(client, filled, delimiter="/", max_keys=2)
    entries = [x for p in pages for x in p.keys + p.prefixes]
    assert sorted(entries) == ["docs/", "photos/", "plus+/", "readme", "sp ace/", "中文/"]
    assert all(len(p.keys) + len(p.prefixes) <= 2 for p in pages)


def test_v2_start_after(client, filled):
    page = client.list_v2(filled, start_after="photos/2025/c.jpg", max_keys=3)
    assert page.keys == ["photos/top.jpg", "plus+/k", "readme"]
    assert page.truncated
    rest = client.list_v2(filled, token=page.next_marker, max_keys=100)
    assert rest.keys == ["sp ace/k 1", "sp ace/k 2", "中文/一.txt", "中文/二.txt"]
    assert not rest.truncated
