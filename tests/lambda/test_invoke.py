"""ferry's Lambda binaries, invoked through cargo-lambda's runtime emulator with real event JSON.

The test plays the parts AWS plays in a deployment: it invokes the planner as an operator (or a
schedule) would, and it is the SQS event source mapping — it receives messages from the work and
results queues, wraps them in the Lambda SQS event shape (`sqs-record.json`), invokes `transfer`
or `verifier`, deletes the records the function did not list in `batchItemFailures` and makes the
listed ones visible again. Every batch it sends carries one extra record whose body is not a ferry
message: the function must list exactly that record as failed and process the rest.

The fixtures chain in pipeline order (planned → first transfer batch → first verifier batch), and
the last test keeps feeding both functions until the run's report says it is complete.
"""

import json
import re
import time
import uuid

import pytest

from conftest import DEST_BUCKET, JOB, SEEDED, SOURCE_BUCKET, load_fixture

# How long the event-source loop may take to finish the run (20 small objects take a few seconds).
DRIVE_TIMEOUT_S = 120
# Records per event: the most the SAM template's TransferBatchSize / VerifierBatchSize allow
# (infra/template.yaml). 20 keys at 2 per shard make more tasks than that, so the run takes
# several rounds of the event source loop.
MAX_BATCH = 10
UNREADABLE_BODY = "this is not a ferry message {"


# ------------------------------------------------------------------------------------------
# The event source mapping's part
# ------------------------------------------------------------------------------------------

def receive(world, url, limit=MAX_BATCH):
    """Up to `limit` messages from a queue (with their system attributes), as the ESM polls."""
    messages = []
    while len(messages) < limit:
        got = world.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=min(10, limit - len(messages)),
                                        WaitTimeSeconds=0, AttributeNames=["All"]).get("Messages", [])
        if not got:
            break
        messages += got
    return messages


def sqs_event(world, url, messages, with_bad=True):
    """The Lambda SQS event for `messages`, plus (by default) one unreadable record; returns
    (event, the bad record's messageId or None)."""
    arn = world.queue_arn(url)
    records = []
    for m in messages:
        record = load_fixture("sqs-record.json", message_id=m["MessageId"],
                              receipt_handle=m["ReceiptHandle"], queue_arn=arn)
        record["body"] = m["Body"]
        record["md5OfBody"] = m["MD5OfBody"]
        record["attributes"].update({k: v for k, v in m.get("Attributes", {}).items()
                                     if k in record["attributes"]})
        records.append(record)
    bad_id = None
    if with_bad:
        bad_id = f"bad-{uuid.uuid4()}"
        bad = load_fixture("sqs-record.json", message_id=bad_id, receipt_handle=f"rh-{bad_id}", queue_arn=arn)
        bad["body"] = UNREADABLE_BODY
        # In the middle, so a function that stops at the first failure is caught.
        records.insert(len(records) // 2, bad)
    return {"Records": records}, bad_id


def failed_ids(response):
    assert set(response) <= {"batchItemFailures"}, f"unexpected response shape: {response}"
    return [f["itemIdentifier"] for f in response.get("batchItemFailures", [])]


def settle(world, url, messages, failed):
    """What the ESM does with the response: delete the successes, return the failures."""
    for m in messages:
        if m["MessageId"] in failed:
            world.sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"],
                                                VisibilityTimeout=0)
        else:
            world.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def feed(world, lambda_watch, function, url, with_bad=False):
    """One ESM round: receive a batch, invoke, settle. Returns (messages, failed ids, bad id)."""
    messages = receive(world, url)
    if not messages and not with_bad:
        return [], [], None
    event, bad_id = sqs_event(world, url, messages, with_bad)
    response = lambda_watch.invoke_ok(function, event)
    failed = failed_ids(response)
    settle(world, url, messages, failed)
    return messages, failed, bad_id


def in_range(key, work):
    """Whether a seeded key belongs to a range task's `work`."""
    return (key.startswith(work["prefix"])
            and ("start_after" not in work or key > work["start_after"])
            and ("end" not in work or key < work["end"]))


def bodies(messages):
    return [json.loads(m["Body"]) for m in messages]


def dest_keys(world):
    keys = []
    for page in world.oss.get_paginator("list_objects_v2").paginate(Bucket=DEST_BUCKET):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return keys


# ------------------------------------------------------------------------------------------
# The pipeline, step by step
# ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def planned(world, lambda_watch):
    """The planner invoked with the planner input fixture: its output."""
    return lambda_watch.invoke_ok("planner", load_fixture("planner-input.json", job=JOB))


@pytest.fixture(scope="module")
def first_transfer(world, lambda_watch, planned):
    messages, failed, bad_id = feed(world, lambda_watch, "transfer", world.work_url, with_bad=True)
    return {"messages": messages, "failed": failed, "bad": bad_id}


@pytest.fixture(scope="module")
def first_verify(world, lambda_watch, first_transfer):
    messages, failed, bad_id = feed(world, lambda_watch, "verifier", world.results_url, with_bad=True)
    return {"messages": messages, "failed": failed, "bad": bad_id}


def test_planner_refuses_a_job_that_is_not_stored(lambda_watch):
    code, _, raw = lambda_watch.invoke("planner", {"job_key": "jobs/no-such-job/job.json"})
    assert code != 0, f"the planner accepted a missing job:\n{raw}"
    assert "is not in the state store" in raw, raw


def test_planner_creates_and_plans_the_run(world, planned):
    assert planned["job"] == JOB
    # Without `run`, the id is the start time plus the invocation's request id.
    run = planned["run"]
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9A-Za-z]{1,12}", run), run

    manifest = world.state_json(f"jobs/{JOB}/runs/{run}/manifest.json")
    assert manifest is not None, "no manifest.json in the state bucket"
    assert (manifest["job"], manifest["run"]) == (JOB, run)
    progress = world.state_json(f"jobs/{JOB}/runs/{run}/progress.json")
    assert progress is not None, "no progress.json in the state bucket"
    assert world.state_json(f"jobs/{JOB}/current.json") == {"run": run}

    # The range tasks are on the work queue (peeked, then made visible again).
    messages = receive(world, world.work_url)
    for m in messages:
        world.sqs.change_message_visibility(QueueUrl=world.work_url, ReceiptHandle=m["ReceiptHandle"],
                                            VisibilityTimeout=0)
    tasks = bodies(messages)
    assert len(tasks) >= 2, f"expected the 20 keys in 4 folders split over several ranges: {tasks}"
    for task in tasks:
        assert (task["job"], task["run"]) == (JOB, run), task
        assert task["work"]["kind"] == "range", task


def test_a_second_start_while_the_run_is_unfinished_is_skipped(world, lambda_watch, planned):
    # A schedule firing again before the run ends must not start a second run of the same job.
    response = lambda_watch.invoke_ok("planner", load_fixture("planner-input.json", job=JOB))
    assert response.get("skipped") is True, response
    assert response["running"] == planned["run"], response
    assert "overlap" in response["reason"], response
    assert world.state_json(f"jobs/{JOB}/current.json") == {"run": planned["run"]}


def test_transfer_fails_exactly_the_unreadable_record(world, first_transfer):
    assert len(first_transfer["messages"]) >= 2, "the batch should carry several range tasks"
    assert first_transfer["failed"] == [first_transfer["bad"]]
    # The good records were done: exactly the keys of their ranges are at the destination.
    ranges = [t["work"] for t in bodies(first_transfer["messages"])]
    expected = {k for k in world.objects if any(in_range(k, w) for w in ranges)}
    assert expected, f"the ranges cover no seeded key: {ranges}"
    assert set(dest_keys(world)) == expected
    for key in expected:
        assert world.oss.get_object(Bucket=DEST_BUCKET, Key=key)["Body"].read() == world.objects[key], key


def test_verifier_fails_exactly_the_unreadable_record(world, planned, first_verify):
    # The results queue holds the planner's result and one per range task transferred.
    assert len(first_verify["messages"]) >= 2, "the batch should carry several chunk results"
    assert first_verify["failed"] == [first_verify["bad"]]
    # Every record it did not list was recorded in the run's progress: applied, or parked until
    # the result that issued its task arrives.
    progress = world.state_json(f"jobs/{JOB}/runs/{planned['run']}/progress.json")
    assert progress["tasks_done"] + len(progress.get("early", {})) == len(first_verify["messages"]), progress


def test_run_completes_through_the_event_source_loop(world, lambda_watch, planned, first_verify):
    run = planned["run"]
    report_key = f"jobs/{JOB}/runs/{run}/report.json"
    deadline = time.monotonic() + DRIVE_TIMEOUT_S
    report = None
    while report is None:
        if time.monotonic() > deadline:
            progress = world.state_json(f"jobs/{JOB}/runs/{run}/progress.json") or {}
            pytest.fail(f"no report after {DRIVE_TIMEOUT_S} s: {len(progress.get('pending', {}))} tasks "
                        f"pending, {progress.get('tasks_done')} done, tally {progress.get('tally')}\n"
                        f"{lambda_watch.logs()}")
        moved = False
        for function, url in (("transfer", world.work_url), ("verifier", world.results_url)):
            messages, failed, _ = feed(world, lambda_watch, function, url)
            moved |= bool(messages)
            # Every server is healthy, so a good message sent back is a bug, not bad luck.
            sent_back = [m["Body"] for m in messages if m["MessageId"] in failed]
            assert not sent_back, f"{function} failed good messages {sent_back}\n{lambda_watch.logs(function)}"
        report = world.state_json(report_key)
        if report is None and not moved:
            time.sleep(0.3)

    assert report["verdict"] == "complete", report
    assert report["objects"]["objects"] == SEEDED, report["objects"]
    assert report["objects"]["copied"] == SEEDED, report["objects"]
    assert report["objects"]["failed"] == 0 and report["failed_tasks"] == [], report

    # Every seeded object is at the destination, byte for byte.
    assert sorted(dest_keys(world)) == sorted(world.objects)
    for key, body in world.objects.items():
        got = world.oss.get_object(Bucket=DEST_BUCKET, Key=key)["Body"].read()
        assert got == body, f"{key!r} differs at the destination"

    # Both queues drained: nothing left for the ESM to deliver.
    for url in (world.work_url, world.results_url):
        attrs = world.sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages",
                                          "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        assert attrs == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}, (url, attrs)


def test_source_events_are_copied_through_the_event_run(world, lambda_watch, planned, first_verify):
    """The stack follows the source's events: S3 notifies the events queue; the transfer function
    takes that queue's batch as events (the unreadable record alone listed failed, for the
    dead-letter queue) and issues each as a task of the job's event run of the day; the work and
    results loops copy and count them. An event delivered twice is counted once."""
    # (After the test above, which drove the listing run to its report.)
    # What the seeding left: S3's test event for the new notification configuration.
    for m in receive(world, world.events_url):
        world.sqs.delete_message(QueueUrl=world.events_url, ReceiptHandle=m["ReceiptHandle"])
    written = {"live/after the run+1.txt": b"written while ferry follows", "live/second": b"2"}
    for key, body in written.items():
        world.s3.put_object(Bucket=SOURCE_BUCKET, Key=key, Body=body)
    messages = receive(world, world.events_url)
    assert len(messages) == len(written), bodies(messages)
    # The first notification again, as S3 may send it twice.
    world.sqs.send_message(QueueUrl=world.events_url, MessageBody=messages[0]["Body"])
    messages += receive(world, world.events_url)
    event, bad_id = sqs_event(world, world.events_url, messages)
    failed = failed_ids(lambda_watch.invoke_ok("transfer", event))
    assert failed == [bad_id], f"{failed}\n{lambda_watch.logs('transfer')}"
    settle(world, world.events_url, messages, failed)

    day = time.strftime("%Y%m%d", time.gmtime())
    progress_key = f"jobs/{JOB}/runs/events-{day}/progress.json"
    deadline = time.monotonic() + DRIVE_TIMEOUT_S
    while True:
        progress = world.state_json(progress_key)
        assert progress is not None, f"no event run {progress_key}\n{lambda_watch.logs('transfer')}"
        if not progress["pending"]:
            break
        if time.monotonic() > deadline:
            pytest.fail(f"event run still pending after {DRIVE_TIMEOUT_S} s: {progress}\n{lambda_watch.logs()}")
        moved = False
        for function, url in (("transfer", world.work_url), ("verifier", world.results_url)):
            got, _, _ = feed(world, lambda_watch, function, url)
            moved |= bool(got)
        if not moved:
            time.sleep(0.3)
    assert progress["open"] is True and progress["tasks_done"] == len(written), progress
    tally = progress["tally"]
    assert (tally["objects"], tally["copied"], tally["failed"]) == (len(written), len(written), 0), tally
    for key, body in written.items():
        assert world.oss.get_object(Bucket=DEST_BUCKET, Key=key)["Body"].read() == body, key
