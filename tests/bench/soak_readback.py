"""Reads the soak benchmark's destination back with oss2 (the official Alibaba Cloud OSS Python
SDK) and compares every object, byte for byte, with what `ferry-bench soak` seeded at the source.

The expected bytes are rebuilt from the manifest the benchmark wrote (key, size, offset, index
of every object) and the block file beside it, with the same rule as the Rust generator
(`tests/bench/src/soak.rs`, `fill`): byte j of an object is byte j of its header
`ferry-soak {index} {key}\\n` while j is inside the header, and byte (offset + j) mod len(block)
of the block after it.

Checks: the bucket's listing (ListObjectsV2) holds exactly the manifest's keys with their
sizes; every object's GET returns exactly the expected bytes (and oss2's CRC-64 of what it read
matches the server's x-oss-hash-crc64ecma); ListMultipartUploads shows no upload left open.

Prints progress on stderr and one line `READBACK {json}` on stdout, then exits 0 whatever it
found: the benchmark judges the result. Exits 2 only when it cannot run at all.

    python soak_readback.py --endpoint http://127.0.0.1:PORT --bucket B --manifest M.json \
        --block block.bin --access-key-id AK --access-key-secret SK [--region cn-hangzhou]
"""

import argparse
import concurrent.futures
import json
import multiprocessing
import sys
import time

import oss2

CONNECT_TIMEOUT_S = 10
# Findings kept per kind (the counts are always complete).
KEEP = 50


def expected_bytes(index, key, size, offset, block):
    header = f"ferry-soak {index} {key}\n".encode()
    out = bytearray(header[:size])
    pos = len(out)
    n = len(block)
    while pos < size:
        b = (offset + pos) % n
        take = min(n - b, size - pos)
        out += block[b:b + take]
        pos += take
    return bytes(out)


def make_bucket(args):
    auth = oss2.AuthV4(args.access_key_id, args.access_key_secret)
    return oss2.Bucket(auth, args.endpoint, args.bucket, region=args.region,
                       connect_timeout=CONNECT_TIMEOUT_S, enable_crc=True)


_state = {}


def _init_worker(args, block):
    _state["bucket"] = make_bucket(args)
    _state["block"] = block


def _check_one(entry):
    key, size, offset, index = entry
    bucket, block = _state["bucket"], _state["block"]
    try:
        result = bucket.get_object(key)
        data = result.read()
    except oss2.exceptions.NoSuchKey:
        return ("missing", key, None, 0)
    except Exception as e:  # noqa: BLE001 — every failure is a finding, named
        return ("error", key, f"{type(e).__name__}: {e}"[:300], 0)
    if result.server_crc is not None and result.client_crc != result.server_crc:
        return ("crc", key, f"oss2 computed {result.client_crc}, the server says {result.server_crc}", len(data))
    if len(data) != size:
        return ("size", key, f"{len(data)} bytes, expected {size}", len(data))
    want = expected_bytes(index, key, size, offset, block)
    if data != want:
        first = next(i for i in range(size) if data[i] != want[i])
        return ("bytes", key, f"first difference at byte {first} of {size}", len(data))
    return ("ok", key, None, len(data))


def _check_chunk(entries):
    with concurrent.futures.ThreadPoolExecutor(max_workers=_state.get("threads", 4)) as pool:
        return list(pool.map(_check_one, entries))


def _init_worker_threads(args, block, threads):
    _init_worker(args, block)
    _state["threads"] = threads


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--endpoint", required=True)
    p.add_argument("--bucket", required=True)
    p.add_argument("--manifest", required=True)
    p.add_argument("--block", required=True)
    p.add_argument("--access-key-id", required=True)
    p.add_argument("--access-key-secret", required=True)
    p.add_argument("--region", default="cn-hangzhou")
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--threads", type=int, default=4)
    args = p.parse_args()

    started = time.monotonic()
    with open(args.manifest) as f:
        manifest = json.load(f)
    with open(args.block, "rb") as f:
        block = f.read()
    if len(block) != manifest["block_len"]:
        print(f"the block file has {len(block)} bytes, the manifest says {manifest['block_len']}", file=sys.stderr)
        sys.exit(2)
    entries = [tuple(e) for e in manifest["objects"]]
    want = {e[0]: e[1] for e in entries}

    bucket = make_bucket(args)
    found = {}
    listing_errors = []
    try:
        for obj in oss2.ObjectIteratorV2(bucket, max_keys=1000):
            found[obj.key] = obj.size
    except Exception as e:  # noqa: BLE001
        listing_errors.append(f"{type(e).__name__}: {e}"[:300])
    missing_listed = sorted(k for k in want if k not in found)
    unexpected = sorted(k for k in found if k not in want)
    listed_size = sorted(f"{k}: listed {found[k]} bytes, expected {want[k]}"
                         for k in want if k in found and found[k] != want[k])
    print(f"listed {len(found)} objects in {time.monotonic() - started:.1f} s", file=sys.stderr)

    uploads = []
    try:
        for u in oss2.MultipartUploadIterator(bucket, max_uploads=1000):
            uploads.append(f"{u.key} (upload {u.upload_id}, initiated {u.initiation_date})")
    except Exception as e:  # noqa: BLE001
        listing_errors.append(f"ListMultipartUploads: {type(e).__name__}: {e}"[:300])

    read_started = time.monotonic()
    chunk = 500
    chunks = [entries[i:i + chunk] for i in range(0, len(entries), chunk)]
    findings = {"missing": [], "error": [], "crc": [], "size": [], "bytes": []}
    counts = {k: 0 for k in findings}
    exact = 0
    bytes_read = 0
    done = 0
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(args.processes, initializer=_init_worker_threads,
                  initargs=(args, block, args.threads)) as pool:
        for results in pool.imap_unordered(_check_chunk, chunks):
            for kind, key, detail, n in results:
                bytes_read += n
                if kind == "ok":
                    exact += 1
                    continue
                counts[kind] += 1
                if len(findings[kind]) < KEEP:
                    findings[kind].append(key if detail is None else f"{key}: {detail}")
            done += len(results)
            if done % 10000 < chunk:
                rate = done / max(time.monotonic() - read_started, 1e-9)
                print(f"read back {done}/{len(entries)} ({rate:.0f}/s)", file=sys.stderr)

    report = {
        "sdk": f"oss2 {oss2.__version__}",
        "expected": len(entries),
        "listed": len(found),
        "listed_missing": len(missing_listed),
        "listed_missing_keys": missing_listed[:KEEP],
        "unexpected": len(unexpected),
        "unexpected_keys": unexpected[:KEEP],
        "listed_size_mismatch": len(listed_size),
        "listed_size_mismatch_keys": listed_size[:KEEP],
        "exact": exact,
        "bytes_read": bytes_read,
        "counts": counts,
        "findings": findings,
        "uploads_open": len(uploads),
        "uploads": uploads[:KEEP],
        "listing_errors": listing_errors,
        "read_seconds": time.monotonic() - read_started,
        "seconds": time.monotonic() - started,
    }
    print("READBACK " + json.dumps(report, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
