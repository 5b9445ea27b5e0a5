"""Fixtures: ferry's three Lambda binaries under cargo-lambda's runtime emulator, against real servers.

One session sets up, all on 127.0.0.1:

* `moto_server` (from the repo's `.venv`, made by `scripts/setup-tools`; `MOTO_SERVER` overrides)
  standing in for S3 (the source bucket and the state bucket), SQS (the work and results queues)
  and Secrets Manager (the job's credentials);
* the OSS emulator binary as the destination;
* `cargo lambda watch --only-lambda-apis` — the Lambda runtime API — with the `planner`,
  `transfer` and `verifier` binaries attached to it, each with the deployment's environment
  (`shared/src/deploy/mod.rs`); tests invoke them with `cargo lambda invoke --data-file`.

The four binaries come from one `cargo build -p oss-emulator -p planner -p transfer -p verifier`,
or as they are from `OSS_EMULATOR_BIN` and `FERRY_LAMBDA_BIN_DIR` (what `scripts/test` passes).

Every child runs in its own process group, logs to a file in pytest's temporary directory (never
inside a package directory) and is stopped at session end; failures show the log tails.
Three cargo-lambda quirks shape this file: any HTTP request to the invoke port is an
invocation, so readiness is a TCP connect; payloads go in with `--data-file`; the emulator's
deadline is in the past, so FERRY_TIME_BUDGET_SECS applies.
"""

import http.client
import json
import os
import pathlib
import selectors
import signal
import socket
import string
import subprocess
import time

import boto3
import pytest
from botocore.config import Config

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parents[1]
VENV_BIN = REPO / ".venv" / "bin"

REGION = "us-east-1"
AWS_KEY_ID = "moto-test-key"
AWS_SECRET = "moto-test-secret"
OSS_REGION = "cn-hangzhou"
OSS_KEY_ID = "LTAI5tFerryLambdaKey"
OSS_SECRET = "ferry-lambda-secret-0123456789abcdef"

JOB = "lambda-e2e"
SOURCE_BUCKET = "ferry-lambda-source"
STATE_BUCKET = "ferry-lambda-state"
DEST_BUCKET = "ferry-lambda-dest"
SEEDED = 20

BUILD_TIMEOUT_S = 1800  # a cold debug build on a 2-core machine shared with other builds
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 10
# cargo lambda watch's `--timeout`: how long an invocation may run.
INVOKE_TIMEOUT_S = 120
# The function's own time budget for a task: cargo-lambda's deadline is always in the past.
TIME_BUDGET_S = 60


# ------------------------------------------------------------------------------------------
# Child processes
# ------------------------------------------------------------------------------------------

class Child:
    """A child process in its own process group, with its output in a log file."""

    def __init__(self, name, cmd, log_path, *, env=None, cwd=None, stdout_pipe=False):
        self.name = name
        self.log_path = log_path
        log = open(log_path, "wb")
        try:
            self.process = subprocess.Popen(
                [str(c) for c in cmd], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if stdout_pipe else log, stderr=log,
                start_new_session=True)
        finally:
            log.close()

    def log_tail(self, chars=4000):
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError as e:
            return f"(cannot read {self.log_path}: {e})"

    def fail(self, why):
        """Stops the child and raises with its log tail."""
        self.stop()
        raise RuntimeError(f"{self.name}: {why}; log {self.log_path}:\n{self.log_tail()}")

    def stop(self):
        """SIGTERM to the child's process group (cargo-lambda runs `cargo run` and the function
        binaries under it), then SIGKILL if it has not gone."""
        if self.process.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                pass
        # Grandchildren can outlive the leader; the group id is the leader's pid.
        self._signal_group(signal.SIGKILL)
        if self.process.poll() is None:
            self.process.wait(timeout=STOP_TIMEOUT_S)
        if self.process.stdout:
            self.process.stdout.close()

    def _signal_group(self, sig):
        try:
            os.killpg(self.process.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(child, ready, what, timeout_s=START_TIMEOUT_S):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if child.process.poll() is not None:
            child.fail(f"exited with {child.process.returncode} before {what}")
        if ready():
            return
        time.sleep(0.2)
    child.fail(f"not {what} after {timeout_s} s")


def tcp_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def child_env(**extra):
    """The environment for children: no AWS settings of the caller's (a profile, a CA bundle
    or real keys must never reach moto's stand-ins), `.venv/bin` first on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["CARGO_TERM_COLOR"] = "never"
    env.update(extra)
    return env


def cargo_build(*packages):
    """`cargo build -p …` for the given packages; returns {binary name: path}."""
    cmd = ["cargo", "build", "--message-format=json-render-diagnostics"]
    for p in packages:
        cmd += ["-p", p]
    proc = subprocess.run(cmd, cwd=REPO, env=child_env(), capture_output=True, text=True,
                          timeout=BUILD_TIMEOUT_S)
    if proc.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd)}` failed:\n{proc.stderr[-4000:]}")
    built = {}
    for line in proc.stdout.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg.get("executable"):
            built[msg["target"]["name"]] = pathlib.Path(msg["executable"])
    return built


def venv_tool(name, override_env=None):
    override = os.environ.get(override_env) if override_env else None
    path = pathlib.Path(override) if override else VENV_BIN / name
    if not path.is_file():
        raise RuntimeError(f"{path} not found: run scripts/setup-tools to create the repo's .venv")
    return path


# ------------------------------------------------------------------------------------------
# Servers
# ------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def logs(tmp_path_factory):
    """Logs and event files live here, outside every package directory."""
    return tmp_path_factory.mktemp("lambda")


@pytest.fixture(scope="session")
def moto_endpoint(logs):
    # tests/support/moto_server.py: moto with S3's atomic conditional writes (see its docs).
    if os.environ.get("MOTO_SERVER"):
        command = [venv_tool("moto_server", "MOTO_SERVER")]
    else:
        command = [venv_tool("python"), REPO / "tests" / "support" / "moto_server.py"]
    port = free_port()
    child = Child("moto_server", [*command, "-H", "127.0.0.1", "-p", port], logs / "moto.log",
                  env=child_env())

    def answers():
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/moto-api/")
            ok = conn.getresponse().status == 200
            conn.close()
            return ok
        except OSError:
            return False

    try:
        wait_until(child, answers, "answering GET /moto-api/")
        yield f"http://127.0.0.1:{port}"
    finally:
        child.stop()


@pytest.fixture(scope="session")
def oss_endpoint(logs, binaries):
    binary = binaries["oss-emulator"]
    child = Child("oss-emulator",
                  [binary, "--listen", "127.0.0.1:0", "--access-key-id", OSS_KEY_ID,
                   "--access-key-secret", OSS_SECRET, "--region", OSS_REGION,
                   "--bucket", DEST_BUCKET],
                  logs / "oss-emulator.log", env=child_env(RUST_LOG="warn"), stdout_pipe=True)
    try:
        line = first_line(child.process, START_TIMEOUT_S)
        if not line.startswith("listening on http://127.0.0.1:"):
            child.fail(f"did not announce its address (got {line!r})")
        yield line.removeprefix("listening on ").strip()
    finally:
        child.stop()


def first_line(process, timeout_s):
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


# ------------------------------------------------------------------------------------------
# AWS resources and the job
# ------------------------------------------------------------------------------------------

def boto_client(service, endpoint, **kw):
    config = Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5,
                    read_timeout=30, request_checksum_calculation="when_required",
                    response_checksum_validation="when_required",
                    s3={"addressing_style": "path"})
    return boto3.client(service, endpoint_url=endpoint, config=config,
                        region_name=kw.get("region", REGION),
                        aws_access_key_id=kw.get("key_id", AWS_KEY_ID),
                        aws_secret_access_key=kw.get("secret", AWS_SECRET))


def fill(template, **values):
    """A fixture file's JSON with `${name}` placeholders in its strings filled in."""
    if isinstance(template, str):
        return string.Template(template).substitute(values)
    if isinstance(template, list):
        return [fill(v, **values) for v in template]
    if isinstance(template, dict):
        return {k: fill(v, **values) for k, v in template.items()}
    return template


def load_fixture(name, **values):
    return fill(json.loads((HERE / name).read_text()), **values)


def seed_body(i):
    """Distinct, reproducible bytes; sizes from 0 to a few KiB."""
    return (f"object {i}:".encode() + bytes(range(256)) * (i * 3))[: i * 700]


def seed_keys():
    # A few folders so the planner finds more than one range; a space and non-ASCII for keys
    # users really have.
    folders = ["alpha/", "beta/", "gamma/deep/", "δέλτα/"]
    return [f"{folders[i % len(folders)]}obj {i:03}.bin" for i in range(SEEDED)]


class World:
    """The AWS side (moto) and the OSS side (emulator) of one test session."""

    def __init__(self, moto_endpoint, oss_endpoint):
        self.moto_endpoint = moto_endpoint
        self.oss_endpoint = oss_endpoint
        self.s3 = boto_client("s3", moto_endpoint)
        self.sqs = boto_client("sqs", moto_endpoint)
        self.secrets = boto_client("secretsmanager", moto_endpoint)
        self.oss = boto_client("s3", oss_endpoint, region=OSS_REGION, key_id=OSS_KEY_ID,
                               secret=OSS_SECRET)
        self.objects = {}
        self.work_url = self.results_url = self.events_url = None

    def create(self):
        for bucket in (SOURCE_BUCKET, STATE_BUCKET):
            self.s3.create_bucket(Bucket=bucket)
        # Long visibility: messages handed to a function come back only when the test says so.
        attrs = {"VisibilityTimeout": "300"}
        self.work_url = self.sqs.create_queue(QueueName="ferry-work", Attributes=attrs)["QueueUrl"]
        self.results_url = self.sqs.create_queue(QueueName="ferry-results", Attributes=attrs)["QueueUrl"]
        self.events_url = self.sqs.create_queue(QueueName="ferry-events", Attributes=attrs)["QueueUrl"]
        self.secrets.create_secret(Name="ferry/source", SecretString=json.dumps(
            {"access_key_id": AWS_KEY_ID, "secret_access_key": AWS_SECRET}))
        self.secrets.create_secret(Name="ferry/oss", SecretString=json.dumps(
            {"access_key_id": OSS_KEY_ID, "access_key_secret": OSS_SECRET}))
        for i, key in enumerate(seed_keys()):
            body = seed_body(i)
            self.s3.put_object(Bucket=SOURCE_BUCKET, Key=key, Body=body)
            self.objects[key] = body
        job = load_fixture("job.json", job=JOB, source_bucket=SOURCE_BUCKET, dest_bucket=DEST_BUCKET,
                           moto_endpoint=self.moto_endpoint, oss_endpoint=self.oss_endpoint)
        self.s3.put_object(Bucket=STATE_BUCKET, Key=f"jobs/{JOB}/job.json",
                           Body=json.dumps(job, indent=2).encode())
        # The stack follows the source's events (FollowEvents): moto's S3 notifies the events
        # queue from now on, as the bucket's notification configuration would.
        self.s3.put_bucket_notification_configuration(
            Bucket=SOURCE_BUCKET,
            NotificationConfiguration={"QueueConfigurations": [{
                "QueueArn": self.queue_arn(self.events_url),
                "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]}]})

    def function_env(self):
        """The deployment's environment, as the SAM template sets it (plus moto's endpoint)."""
        return {
            "FERRY_STATE_BUCKET": STATE_BUCKET,
            "FERRY_WORK_QUEUE_URL": self.work_url,
            "FERRY_RESULTS_QUEUE_URL": self.results_url,
            "FERRY_MAX_RECEIVES": "5",
            "FERRY_TIME_BUDGET_SECS": str(TIME_BUDGET_S),
            "FERRY_STATE_PATH_STYLE": "1",
            # As the template sets them when FollowEvents is on.
            "FERRY_EVENTS_QUEUE_ARN": self.queue_arn(self.events_url),
            "FERRY_EVENTS_JOB": JOB,
            "AWS_ENDPOINT_URL": self.moto_endpoint,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": AWS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
            "AWS_EC2_METADATA_DISABLED": "true",
            "RUST_LOG": "info",
            # As the template's LoggingConfig sets it: one JSON object per log line.
            "AWS_LAMBDA_LOG_FORMAT": "JSON",
        }

    def state_json(self, key):
        """A state-store document, or None when absent."""
        try:
            body = self.s3.get_object(Bucket=STATE_BUCKET, Key=key)["Body"].read()
        except self.s3.exceptions.NoSuchKey:
            return None
        return json.loads(body)

    def queue_arn(self, url):
        return self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


@pytest.fixture(scope="session")
def world(moto_endpoint, oss_endpoint):
    w = World(moto_endpoint, oss_endpoint)
    w.create()
    return w


# ------------------------------------------------------------------------------------------
# cargo lambda watch and the functions
# ------------------------------------------------------------------------------------------

FUNCTIONS = ("planner", "transfer", "verifier")


class Lambda:
    """cargo-lambda's runtime emulator with the three functions attached, and `cargo lambda invoke`."""

    def __init__(self, watch, port, functions, events_dir):
        self.watch = watch
        self.port = port
        self.functions = functions  # name -> Child
        self.events_dir = events_dir
        self._n = 0

    def logs(self, function=None):
        """The tails of the emulator's log and the function's (or every function's)."""
        names = [function] if function else list(self.functions)
        parts = [f"--- cargo lambda watch ---\n{self.watch.log_tail(1500)}"]
        parts += [f"--- {n} ---\n{self.functions[n].log_tail(3000)}" for n in names]
        return "\n".join(parts)

    def invoke(self, function, payload):
        """Invokes `function` with `payload` (written to a file for `--data-file`). Returns
        (exit code, parsed JSON output or None, raw stdout+stderr)."""
        child = self.functions[function]
        if child.process.poll() is not None:
            raise AssertionError(f"{function} exited with {child.process.returncode}:\n{self.logs(function)}")
        self._n += 1
        data = self.events_dir / f"{self._n:03}-{function}.json"
        data.write_text(json.dumps(payload, indent=2, ensure_ascii=False))
        cmd = [venv_tool("cargo-lambda"), "lambda", "invoke", "-A", "127.0.0.1", "-P", self.port,
               "--output-format", "json", "--data-file", data, function]
        try:
            proc = subprocess.run([str(c) for c in cmd], cwd=self.events_dir, env=child_env(),
                                  capture_output=True, text=True, timeout=INVOKE_TIMEOUT_S + 30)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"invoking {function} took over {INVOKE_TIMEOUT_S} s:\n"
                                 f"{self.logs(function)}") from None
        output = None
        if proc.returncode == 0:
            try:
                output = json.loads(proc.stdout)
            except json.JSONDecodeError:
                pass
        return proc.returncode, output, proc.stdout + proc.stderr

    def invoke_ok(self, function, payload):
        code, output, raw = self.invoke(function, payload)
        if code != 0 or output is None:
            raise AssertionError(f"invoking {function} failed (exit {code}):\n{raw[-3000:]}\n"
                                 f"{self.logs(function)}")
        return output


@pytest.fixture(scope="session")
def binaries():
    """{name: path} of the oss-emulator and the three function binaries.

    `OSS_EMULATOR_BIN` and `FERRY_LAMBDA_BIN_DIR` (a directory holding planner, transfer and
    verifier, e.g. target/debug after `cargo build --workspace`) use existing builds as they
    are. Whatever is not given is built in one `cargo build`: one package selection means one
    set of unified features, so nothing is compiled twice in different variants.
    """
    found, wanted = {}, []
    emulator = os.environ.get("OSS_EMULATOR_BIN")
    if emulator:
        found["oss-emulator"] = pathlib.Path(emulator)
    else:
        wanted.append("oss-emulator")
    bin_dir = os.environ.get("FERRY_LAMBDA_BIN_DIR")
    if bin_dir:
        found.update({f: pathlib.Path(bin_dir) / f for f in FUNCTIONS})
    else:
        wanted += FUNCTIONS
    if wanted:
        # Build (a no-op when up to date) so a stale binary never answers for new code.
        built = cargo_build(*wanted)
        found.update({name: built.get(name) for name in wanted})
    for name, path in found.items():
        if path is None or not path.is_file():
            override = "OSS_EMULATOR_BIN" if name == "oss-emulator" else "FERRY_LAMBDA_BIN_DIR"
            raise RuntimeError(f"no {name} binary at {path}: build it, or unset {override}")
    return found


@pytest.fixture(scope="session")
def lambda_watch(world, binaries, logs):
    """`cargo lambda watch --only-lambda-apis` with the three function binaries attached.

    The emulator serves the Lambda runtime API; each function binary runs as the emulator's own
    instances would (same `AWS_LAMBDA_*` environment), pointed at `/.rt/<name>`, so an invoke of
    `<name>` reaches it. Starting the binaries here instead of letting `watch` `cargo run` them
    means the binaries under test are exactly the ones built above — `cargo run --bin X` would
    resolve features for one package, compile a second variant of the dependency tree, and pick
    up whatever half-edited source is in the workspace at that moment.
    """
    port = free_port()
    watch = Child("cargo lambda watch",
                  [venv_tool("cargo-lambda"), "lambda", "watch", "--only-lambda-apis", "--ignore-changes",
                   "-A", "127.0.0.1", "-P", port, "--timeout", INVOKE_TIMEOUT_S],
                  logs / "watch.log", cwd=REPO, env=child_env())
    functions = {}
    events = logs / "events"
    events.mkdir()
    try:
        wait_until(watch, lambda: tcp_open(port), f"listening on 127.0.0.1:{port}")
        for name in FUNCTIONS:
            env = child_env(
                **world.function_env(),
                AWS_LAMBDA_FUNCTION_NAME=name,
                AWS_LAMBDA_FUNCTION_VERSION="1",
                AWS_LAMBDA_FUNCTION_MEMORY_SIZE="1024",
                AWS_LAMBDA_RUNTIME_API=f"http://127.0.0.1:{port}/.rt/{name}",
            )
            functions[name] = Child(name, [binaries[name]], logs / f"{name}.log", cwd=logs, env=env)
        yield Lambda(watch, port, functions, events)
    finally:
        for child in functions.values():
            child.stop()
        watch.stop()
