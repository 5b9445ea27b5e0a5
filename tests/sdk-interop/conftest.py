"""Fixtures: ferry's OSS emulator as a real process on 127.0.0.1, and SDK clients pointed at it.

The emulator binary is `target/debug/oss-emulator` (built with `cargo build -p oss-emulator`
first, which is quick when it is up to date); set OSS_EMULATOR_BIN to use another build as is.
Every emulator is started with `--listen 127.0.0.1:0`, announces its port on its first stdout
line and is stopped when its fixture ends. Its stderr goes to a log file whose tail is shown
when it fails to start.
"""

import http.client
import itertools
import json
import os
import pathlib
import selectors
import subprocess
import tempfile
import time

import pytest

import ferry_tools
from sdk_clients import make_client

ACCESS_KEY_ID = "LTAI5tFerryInteropKey"
ACCESS_KEY_SECRET = "ferry-interop-secret-0123456789abcdef"
REGION = "cn-hangzhou"
START_TIMEOUT_S = 30
STOP_TIMEOUT_S = 10

SDK_VERSIONS = [("oss2", "v4"), ("oss2", "v1"), ("alibabacloud-oss-v2", "v4"), ("alibabacloud-oss-v2", "v1")]


class Emulator:
    """A running oss-emulator process."""

    def __init__(self, process, endpoint, log_path):
        self.process = process
        self.endpoint = endpoint  # http://127.0.0.1:PORT
        self.host, port = endpoint.removeprefix("http://").rsplit(":", 1)
        self.port = int(port)
        self.log_path = log_path

    def admin(self, method, path, body=None):
        """Calls the emulator's unsigned admin API (`/-/admin/...`); returns (status, parsed JSON or None)."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            payload = json.dumps(body).encode() if body is not None else None
            conn.request(method, "/-/admin/" + path, body=payload,
                         headers={"Content-Type": "application/json"} if payload else {})
            resp = conn.getresponse()
            raw = resp.read()
        finally:
            conn.close()
        return resp.status, (json.loads(raw) if raw.strip() else None)

    def counters(self):
        status, body = self.admin("GET", "counters")
        assert status == 200, body
        return body

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT_S)
        if self.process.stdout:
            self.process.stdout.close()


def emulator_binary():
    override = os.environ.get("OSS_EMULATOR_BIN")
    if override:
        path = pathlib.Path(override)
        if not path.is_file():
            raise RuntimeError(f"OSS_EMULATOR_BIN={override} is not a file; unset it to build the emulator")
        return path
    # Build (a no-op when up to date) so a stale binary never answers for new code.
    return ferry_tools.cargo_build("oss-emulator", binary="oss-emulator")


def start_emulator(binary, *extra_args):
    log = tempfile.NamedTemporaryFile(prefix="oss-emulator-", suffix=".log", delete=False)
    cmd = [str(binary), "--listen", "127.0.0.1:0", "--access-key-id", ACCESS_KEY_ID,
           "--access-key-secret", ACCESS_KEY_SECRET, "--region", REGION, *extra_args]
    env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "warn"))
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, env=env)
    log.close()
    line = _first_line(process, START_TIMEOUT_S)
    if not line.startswith("listening on http://"):
        process.kill()
        process.wait()
        tail = pathlib.Path(log.name).read_text(errors="replace")[-3000:]
        raise RuntimeError(f"oss-emulator did not announce its address (got {line!r}); stderr:\n{tail}")
    emulator = Emulator(process, line.removeprefix("listening on ").strip(), log.name)
    assert emulator.host == "127.0.0.1", emulator.endpoint
    return emulator


def _first_line(process, timeout_s):
    deadline = time.monotonic() + timeout_s
    buf = b""
    with selectors.DefaultSelector() as sel:
        sel.register(process.stdout, selectors.EVENT_READ)
        while b"\n" not in buf and time.monotonic() < deadline:
            if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
                break
            chunk = os.read(process.stdout.fileno(), 4096)
            if not chunk:
                break
            buf += chunk
    return buf.split(b"\n", 1)[0].decode(errors="replace")


@pytest.fixture(scope="session")
def emulator_bin():
    return emulator_binary()


@pytest.fixture(scope="session")
def emulator(emulator_bin):
    emu = start_emulator(emulator_bin)
    yield emu
    emu.stop()


_bucket_numbers = itertools.count(1)


def new_bucket_name(tag):
    return f"it-{tag}-{os.getpid() % 10000}-{next(_bucket_numbers)}"


@pytest.fixture(params=SDK_VERSIONS, ids=[f"{s}-{v}" for s, v in SDK_VERSIONS])
def sdk(request):
    """(sdk name, signature version) — every client test runs once per combination."""
    return request.param


@pytest.fixture
def client(sdk, emulator):
    name, version = sdk
    return make_client(name, emulator.endpoint, version, ACCESS_KEY_ID, ACCESS_KEY_SECRET, region=REGION)


@pytest.fixture
def bucket(client, emulator):
    """A fresh bucket created through the SDK under test, removed (with its contents) afterwards."""
    name = new_bucket_name("b")
    client.create_bucket(name)
    yield name
    emulator.admin("DELETE", f"buckets/{name}")
