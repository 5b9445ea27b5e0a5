"""Builds and runs ferry's Rust programs the tests need (the signer example, the OSS emulator)."""

import json
import os
import pathlib
import subprocess

REPO = pathlib.Path(__file__).resolve().parents[2]
BUILD_TIMEOUT_S = 1800  # a cold debug build on a 2-core machine shared with other builds


def cargo_build(package, *, example=None, binary=None):
    """Builds one target with cargo and returns the path of its executable."""
    cmd = ["cargo", "build", "-p", package, "--message-format=json-render-diagnostics"]
    if example:
        cmd += ["--example", example]
    if binary:
        cmd += ["--bin", binary]
    env = dict(os.environ, CARGO_TERM_COLOR="never")
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    if proc.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd)}` failed:\n{proc.stderr[-4000:]}")
    wanted = example or binary
    for line in proc.stdout.splitlines():
        msg = json.loads(line)
        if (msg.get("reason") == "compiler-artifact" and msg.get("executable")
                and msg["target"]["name"] == wanted):
            return pathlib.Path(msg["executable"])
    raise RuntimeError(f"`{' '.join(cmd)}` built no executable named {wanted}")


def ferry_sign(cases, timeout_s=120):
    """ferry's result for each case (same order), from `cargo run -p ferry --example sign_requests`."""
    exe = os.environ.get("FERRY_SIGN_REQUESTS_BIN") or cargo_build("ferry", example="sign_requests")
    stdin = "".join(json.dumps(c, ensure_ascii=False) + "\n" for c in cases)
    proc = subprocess.run([str(exe)], input=stdin, capture_output=True, text=True, timeout=timeout_s)
    if proc.returncode != 0:
        raise RuntimeError(f"sign_requests exited with {proc.returncode}: {proc.stderr[-2000:]}")
    results = [json.loads(line) for line in proc.stdout.splitlines()]
    if len(results) != len(cases):
        raise RuntimeError(f"sign_requests answered {len(results)} lines for {len(cases)} requests")
    return results
