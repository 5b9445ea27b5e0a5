"""Offline checks of ferry's AWS SAM template, infra/template.yaml.

Nothing here talks to AWS. The template is translated to plain CloudFormation with
infra/sam_translate.py (aws-sam-translator), both forms are linted with cfn-lint, and the
translated form — what CloudFormation would actually create — is checked for the security and
wiring properties ferry's distributed mode relies on (architecture §5 and §8):

* every queue is encrypted and the two consumed queues dead-letter into their own DLQ;
* the state bucket is private, encrypted, owner-enforced and refuses plain HTTP;
* no role is granted a wildcard action or a "*" resource, and none carries managed policies
  whose contents this file cannot see;
* event source mappings report partial batch failures and cap their concurrency;
* the source is read-only: no role may write or delete anything in the source bucket
  (invariant 5); a restore request is the one opt-in exception;
* functions are arm64 `provided.al2023` with JSON logs, and their code folders match the
  binary names cargo-lambda builds.

Each property check is a function returning a list of problems, and `test_checks_catch_*`
feeds each one a deliberately broken template, so a check that silently passes everything
fails the suite. Run from the repo root: `.venv/bin/pytest tests/infra`.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from samtranslator.yaml_helper import yaml_parse

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "infra" / "template.yaml"
TRANSLATE = REPO / "infra" / "sam_translate.py"
SAMCONFIG_EXAMPLE = REPO / "infra" / "samconfig.example.toml"
# cfn-lint comes from the same virtualenv as the Python running the tests (.venv).
CFN_LINT = Path(sys.executable).parent / "cfn-lint"
TOOL_TIMEOUT_S = 120
# cfn-lint checks region-specific facts (runtimes, resource types, limits): lint for regions a
# migration to OSS is likely to run from, not only cfn-lint's default us-east-1.
LINT_REGIONS = ["us-east-1", "us-west-2", "eu-central-1", "ap-southeast-1", "ap-northeast-1", "ap-east-1"]

LAMBDA_MAX_TIMEOUT_S = 900
# At least this much more than the consumer's timeout (see the template's Mappings section).
VISIBILITY_MARGIN_S = 60
DLQ_RETENTION_S = 14 * 24 * 3600
SQS_DEFAULT_RETENTION_S = 4 * 24 * 3600

FUNCTION_CRATES = {
    "PlannerFunction": "functions/planner",
    "TransferFunction": "functions/transfer",
    "VerifierFunction": "functions/verifier",
}
# The only actions any role may have on the source bucket.
SOURCE_READ_ACTIONS = {
    "s3:listbucket",
    "s3:getobject",
    "s3:getobjectversion",
    "s3:getobjecttagging",
    "s3:getobjectversiontagging",
    "s3:restoreobject",
}
FERRY_ENV = {
    "FERRY_STATE_BUCKET",
    "FERRY_WORK_QUEUE_URL",
    "FERRY_RESULTS_QUEUE_URL",
    "FERRY_MAX_RECEIVES",
    "FERRY_OSS_SECRET_ARN",
    "FERRY_SOURCE_SECRET_ARN",
    "RUST_LOG",
}


# ------------------------------------------------------------------------------------------
# Running the tools


def run(args: list[str | Path]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=TOOL_TIMEOUT_S, cwd=REPO
    )


def translate(sam_path: Path, out_path: Path) -> dict:
    proc = run([sys.executable, TRANSLATE, sam_path, "-o", out_path])
    assert proc.returncode == 0, f"sam_translate.py failed on {sam_path}:\n{proc.stderr}"
    return json.loads(out_path.read_text())


@pytest.fixture(scope="module")
def sam() -> dict:
    """The SAM template as written (short-form intrinsics expanded to {"Ref": ...} etc.)."""
    return yaml_parse(TEMPLATE.read_text())


@pytest.fixture(scope="module")
def built(tmp_path_factory, sam) -> dict:
    """Translates the real template and a broken copy, then lints all of them in one cfn-lint
    run (its start-up dominates the cost). The broken copy carries two mistakes that cfn-lint
    cannot see in SAM form, which proves the translated form is what gets linted."""
    work = tmp_path_factory.mktemp("infra")
    cfn_path = work / "template.cfn.json"
    cfn = translate(TEMPLATE, cfn_path)

    broken = copy.deepcopy(sam)
    verifier = broken["Resources"]["VerifierFunction"]["Properties"]
    verifier["Timeout"] = 1000  # above Lambda's 900 s limit
    verifier["Events"]["Results"]["Properties"]["FunctionResponseTypes"] = ["ReportBatchFailures"]
    broken_sam_path = work / "broken.sam.json"  # JSON is YAML: the translator reads it as is
    broken_sam_path.write_text(json.dumps(broken))
    broken_cfn_path = work / "broken.cfn.json"
    translate(broken_sam_path, broken_cfn_path)

    assert CFN_LINT.exists(), f"{CFN_LINT} is missing: run scripts/setup-tools (tests/requirements.txt pins cfn-lint)"
    proc = run([CFN_LINT, "--format", "parseable", TEMPLATE, cfn_path, broken_cfn_path, "--regions", *LINT_REGIONS])
    findings: dict[str, list[str]] = {}
    for line in proc.stdout.splitlines():
        path = line.split(":", 1)[0]
        findings.setdefault(Path(path).name, []).append(line)
    return {
        "cfn": cfn,
        "lint_rc": proc.returncode,
        "lint_stderr": proc.stderr,
        "findings": findings,
        "template_name": TEMPLATE.name,
        "cfn_name": cfn_path.name,
        "broken_name": broken_cfn_path.name,
    }


@pytest.fixture(scope="module")
def cfn(built) -> dict:
    """The translated template: what CloudFormation would create."""
    return built["cfn"]


# ------------------------------------------------------------------------------------------
# Reading CloudFormation


def alternatives(node) -> list:
    """Every value `node` may take: both branches of an Fn::If, nothing for AWS::NoValue."""
    if isinstance(node, dict) and len(node) == 1:
        if "Fn::If" in node:
            _, when_true, when_false = node["Fn::If"]
            return alternatives(when_true) + alternatives(when_false)
        if node.get("Ref") == "AWS::NoValue":
            return []
    return [node]


def items(node) -> list:
    """A policy field (a string, a list, or either behind Fn::If) as a flat list of alternatives."""
    out = []
    for alt in alternatives(node):
        if isinstance(alt, list):
            for element in alt:
                out.extend(alternatives(element))
        else:
            out.append(alt)
    return out


def of_type(cfn: dict, type_name: str) -> dict:
    return {lid: r for lid, r in cfn["Resources"].items() if r["Type"] == type_name}


def identity_statements(cfn: dict):
    """(owner logical id, statement) for every statement an identity policy may contain."""
    for lid, res in cfn["Resources"].items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::IAM::Role":
            docs = [p["PolicyDocument"] for p in items(props.get("Policies", []))]
        elif res["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            docs = [props["PolicyDocument"]]
        else:
            continue
        for doc in docs:
            for statement in items(doc["Statement"]):
                yield lid, statement


def mentions(node, name: str) -> bool:
    """Whether an expression refers to parameter or resource `name` (Ref, GetAtt or ${} in Sub)."""
    text = json.dumps(node)
    return f'"Ref": "{name}"' in text or f"${{{name}" in text or f'"Fn::GetAtt": ["{name}"' in text


def may_be_source(resource) -> bool:
    """Whether a policy resource can denote the source bucket or its objects."""
    if isinstance(resource, str):
        return resource == "*" or resource.startswith("arn:aws:s3:::*")
    return mentions(resource, "SourceBucketName")


def grants(cfn: dict, role: str, action: str) -> list:
    """The resources on which `role` may be allowed `action` (wildcards in the policy honoured)."""
    found = []
    for owner, statement in identity_statements(cfn):
        if owner != role or statement.get("Effect") != "Allow":
            continue
        patterns = [a.lower() for a in items(statement.get("Action", []))]
        if any(fnmatch.fnmatchcase(action.lower(), p) for p in patterns):
            found.extend(items(statement.get("Resource", [])))
    return found


def get_att_target(node) -> str | None:
    if isinstance(node, dict) and "Fn::GetAtt" in node:
        target = node["Fn::GetAtt"]
        return target[0] if isinstance(target, list) else target.split(".")[0]
    return None


# ------------------------------------------------------------------------------------------
# Property checks: each returns a list of problems (empty = fine)


def unencrypted_queues(cfn: dict) -> list[str]:
    return [
        f"queue {lid} is not encrypted (set SqsManagedSseEnabled: true or KmsMasterKeyId)"
        for lid, q in of_type(cfn, "AWS::SQS::Queue").items()
        if q.get("Properties", {}).get("SqsManagedSseEnabled") is not True
        and "KmsMasterKeyId" not in q.get("Properties", {})
    ]


def bucket_problems(cfn: dict) -> list[str]:
    problems = []
    policies = of_type(cfn, "AWS::S3::BucketPolicy").values()
    for lid, bucket in of_type(cfn, "AWS::S3::Bucket").items():
        props = bucket.get("Properties", {})
        block = props.get("PublicAccessBlockConfiguration", {})
        for flag in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"):
            if block.get(flag) is not True:
                problems.append(f"bucket {lid}: PublicAccessBlockConfiguration.{flag} is not true")
        rules = props.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration", [])
        algorithms = {r.get("ServerSideEncryptionByDefault", {}).get("SSEAlgorithm") for r in rules}
        if not algorithms & {"AES256", "aws:kms", "aws:kms:dsse"}:
            problems.append(f"bucket {lid}: no default encryption")
        ownership = [r.get("ObjectOwnership") for r in props.get("OwnershipControls", {}).get("Rules", [])]
        if ownership != ["BucketOwnerEnforced"]:
            problems.append(f"bucket {lid}: ObjectOwnership is {ownership}, not BucketOwnerEnforced (ACLs off)")
        if not any(tls_only(policy, lid) for policy in policies):
            problems.append(f"bucket {lid}: no bucket policy denies requests without TLS on the bucket and its objects")
    return problems


def tls_only(policy: dict, bucket: str) -> bool:
    props = policy["Properties"]
    if props.get("Bucket") != {"Ref": bucket}:
        return False
    for statement in items(props["PolicyDocument"]["Statement"]):
        resources = items(statement.get("Resource", []))
        if (
            statement.get("Effect") == "Deny"
            and statement.get("Principal") in ("*", {"AWS": "*"})
            and "s3:*" in items(statement.get("Action", []))
            and statement.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
            and {"Fn::GetAtt": [bucket, "Arn"]} in resources
            and {"Fn::Sub": f"${{{bucket}.Arn}}/*"} in resources
        ):
            return True
    return False


def wildcard_grants(cfn: dict) -> list[str]:
    problems = []
    for lid, role in of_type(cfn, "AWS::IAM::Role").items():
        if role["Properties"].get("ManagedPolicyArns"):
            problems.append(f"role {lid} has managed policies, whose permissions this template does not show")
    for owner, statement in identity_statements(cfn):
        if statement.get("Effect") != "Allow":
            continue
        sid = statement.get("Sid", "?")
        if "NotAction" in statement or "NotResource" in statement:
            problems.append(f"{owner}/{sid}: Allow with NotAction/NotResource grants everything else")
        for action in items(statement.get("Action", [])):
            if "*" in action:
                problems.append(f"{owner}/{sid}: wildcard action {action!r}")
        for resource in items(statement.get("Resource", [])):
            if resource == "*":
                problems.append(f"{owner}/{sid}: resource '*'")
    return problems


def event_source_problems(cfn: dict) -> list[str]:
    problems = []
    for lid, esm in of_type(cfn, "AWS::Lambda::EventSourceMapping").items():
        props = esm["Properties"]
        if "ReportBatchItemFailures" not in props.get("FunctionResponseTypes", []):
            problems.append(f"{lid}: no ReportBatchItemFailures, one failure would redeliver the whole batch")
        if "MaximumConcurrency" not in props.get("ScalingConfig", {}):
            problems.append(f"{lid}: no ScalingConfig.MaximumConcurrency, load on source and OSS is uncapped")
    return problems


def redrive_problems(cfn: dict) -> list[str]:
    problems = []
    queues = of_type(cfn, "AWS::SQS::Queue")
    dlqs = {
        get_att_target(q["Properties"]["RedrivePolicy"].get("deadLetterTargetArn"))
        for q in queues.values()
        if "RedrivePolicy" in q.get("Properties", {})
    }
    for lid, queue in queues.items():
        props = queue.get("Properties", {})
        if lid in dlqs:
            retention = props.get("MessageRetentionPeriod", SQS_DEFAULT_RETENTION_S)
            if retention != DLQ_RETENTION_S:
                problems.append(f"dead-letter queue {lid} keeps messages {retention} s, not 14 days")
            continue
        redrive = props.get("RedrivePolicy")
        if not redrive:
            problems.append(f"queue {lid} has no redrive policy: a poison message would be retried forever")
            continue
        dlq = get_att_target(redrive.get("deadLetterTargetArn"))
        if dlq not in queues or dlq == lid:
            problems.append(f"queue {lid} dead-letters into {dlq!r}, which is not another queue of this stack")
        if "maxReceiveCount" not in redrive:
            problems.append(f"queue {lid}: redrive policy without maxReceiveCount")
        if dlq in queues:
            own = props.get("MessageRetentionPeriod", SQS_DEFAULT_RETENTION_S)
            theirs = queues[dlq].get("Properties", {}).get("MessageRetentionPeriod", SQS_DEFAULT_RETENTION_S)
            if not theirs > own:
                problems.append(f"queue {lid} keeps messages as long as its DLQ {dlq}: they could expire on arrival")
    targets = [get_att_target(q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"])
               for q in queues.values() if "RedrivePolicy" in q.get("Properties", {})]
    for dlq in {t for t in targets if targets.count(t) > 1}:
        problems.append(f"{dlq} is the dead-letter queue of several queues; each queue needs its own")
    return problems


def source_write_grants(cfn: dict) -> list[str]:
    """Anything beyond reading (and opt-in restore) that a role may do to the source bucket."""
    problems = []
    for owner, statement in identity_statements(cfn):
        if statement.get("Effect") != "Allow":
            continue
        if not any(may_be_source(r) for r in items(statement.get("Resource", []))):
            continue
        for action in items(statement.get("Action", [])):
            if action.lower() not in SOURCE_READ_ACTIONS:
                problems.append(f"{owner}/{statement.get('Sid', '?')}: {action} on the source bucket")
    return problems


CHECKS = [unencrypted_queues, bucket_problems, wildcard_grants, event_source_problems,
          redrive_problems, source_write_grants]


# ------------------------------------------------------------------------------------------
# Lint and translation


def test_sam_template_lints_clean(built):
    assert built["findings"].get(built["template_name"], []) == [], "\n".join(built["findings"][built["template_name"]])


def test_translated_template_lints_clean(built):
    assert built["findings"].get(built["cfn_name"], []) == [], "\n".join(built["findings"][built["cfn_name"]])


def test_lint_sees_mistakes_only_the_translation_reveals(built):
    """cfn-lint reads the SAM form through SAM's schemas only; both of these mistakes pass there
    and must be caught in the translated form, or the translation step is not doing its job."""
    found = "\n".join(built["findings"].get(built["broken_name"], []))
    assert ":E3717:" in found, f"Timeout 1000 not reported:\n{found}\n{built['lint_stderr']}"
    assert ":E3030:" in found, f"FunctionResponseTypes typo not reported:\n{found}"
    # Errors in the broken copy make cfn-lint exit 2; nothing else may (warnings are 4, ...).
    assert built["lint_rc"] == 2, f"cfn-lint exited {built['lint_rc']}:\n{built['lint_stderr']}"


def test_translation_expands_functions_and_event_source_mappings(cfn):
    types = {r["Type"] for r in cfn["Resources"].values()}
    assert not any(t.startswith("AWS::Serverless::") for t in types)
    assert len(of_type(cfn, "AWS::Lambda::Function")) == 3
    # Work and results, plus the events queue's (conditional on FollowEvents).
    assert len(of_type(cfn, "AWS::Lambda::EventSourceMapping")) == 3
    assert "Transform" not in cfn


def test_translate_script_reports_an_invalid_template(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "Transform: AWS::Serverless-2016-10-31\n"
        "Resources:\n  F:\n    Type: AWS::Serverless::Function\n"
        "    Properties: {CodeUri: ., Handler: bootstrap, Runtime: provided.al2023,\n"
        "                 Events: {E: {Type: SQS, Properties: {}}}}\n"
    )
    proc = run([sys.executable, TRANSLATE, bad])
    assert proc.returncode == 1
    assert "not a valid SAM template" in proc.stderr and "Queue" in proc.stderr


# ------------------------------------------------------------------------------------------
# Security properties of what would be deployed


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_security_property_holds(cfn, check):
    assert check(cfn) == []


def test_every_queue_is_covered(cfn):
    """The checks above mean something only if the queues and bucket they scan exist."""
    assert set(of_type(cfn, "AWS::SQS::Queue")) == {
        "WorkQueue", "WorkDlq", "ResultsQueue", "ResultsDlq", "EventsQueue", "EventsDlq"}
    assert set(of_type(cfn, "AWS::S3::Bucket")) == {"StateBucket"}
    for queue, dlq in (("WorkQueue", "WorkDlq"), ("ResultsQueue", "ResultsDlq"), ("EventsQueue", "EventsDlq")):
        redrive = cfn["Resources"][queue]["Properties"]["RedrivePolicy"]
        assert get_att_target(redrive["deadLetterTargetArn"]) == dlq
        assert redrive["maxReceiveCount"] == {"Ref": "MaxReceiveCount"}


def test_queues_refuse_plain_http(cfn):
    policies = of_type(cfn, "AWS::SQS::QueuePolicy")
    covered = [q for p in policies.values() for q in p["Properties"]["Queues"]]
    assert len(covered) == len(of_type(cfn, "AWS::SQS::Queue")) == 6
    for policy in policies.values():
        statement = policy["Properties"]["PolicyDocument"]["Statement"][0]
        assert statement["Effect"] == "Deny" and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        assert len(statement["Resource"]) == len(policy["Properties"]["Queues"])


def test_the_events_queue_admits_only_the_source_buckets_notifications(cfn):
    """S3 may send to the events queue for the source bucket of the source account only; the
    events resources exist only when FollowEvents is on, and then need a bucket and a job."""
    policy = cfn["Resources"]["EventsQueuePolicy"]
    assert policy["Condition"] == "HasEvents"
    allows = [st for st in policy["Properties"]["PolicyDocument"]["Statement"] if st["Effect"] == "Allow"]
    (allow,) = allows
    assert allow["Principal"] == {"Service": "s3.amazonaws.com"}
    assert allow["Action"] == "sqs:SendMessage"
    assert get_att_target(allow["Resource"]) == "EventsQueue"
    assert mentions(allow["Condition"]["ArnEquals"]["aws:SourceArn"], "SourceBucketName")
    account = allow["Condition"]["StringEquals"]["aws:SourceAccount"]
    assert mentions(account, "SourceBucketAccount") and "AWS::AccountId" in json.dumps(account)
    for name in ("EventsQueue", "EventsDlq", "TransferEvents", "EventsDlqAlarm"):
        assert cfn["Resources"][name]["Condition"] == "HasEvents", name
    esm = cfn["Resources"]["TransferEvents"]["Properties"]
    assert esm["BatchSize"] == 10
    assert esm["ScalingConfig"]["MaximumConcurrency"] == {"Ref": "EventsMaxConcurrency"}
    env = cfn["Resources"]["TransferFunction"]["Properties"]["Environment"]["Variables"]
    assert mentions(env["FERRY_EVENTS_QUEUE_ARN"], "EventsQueue")
    assert mentions(env["FERRY_EVENTS_JOB"], "JobName")
    assert "FERRY_STATE_BUCKET" in env, "the function's own variables add to the global ones"


def test_transfer_role_cannot_delete_or_overwrite_source_objects(cfn):
    # Sanity: the role does read the source, so the resource matching below is live.
    assert any(may_be_source(r) for r in grants(cfn, "TransferRole", "s3:GetObject"))
    for action in ("s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutObject", "s3:PutObjectTagging",
                   "s3:PutObjectAcl", "s3:DeleteBucket", "s3:PutBucketPolicy", "s3:PutLifecycleConfiguration"):
        on_source = [r for r in grants(cfn, "TransferRole", action) if may_be_source(r)]
        assert on_source == [], f"TransferRole may {action} on {on_source}"


def test_restore_is_an_explicit_opt_in(sam):
    """s3:RestoreObject exists only behind the RestoreAllowed condition (AllowArchiveRestore)."""
    statements = sam["Resources"]["TransferRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    guarded = [s["Fn::If"] for s in statements if isinstance(s, dict) and "Fn::If" in s]
    restore = [g for g in guarded if g[1].get("Action") == "s3:RestoreObject"]
    assert [g[0] for g in restore] == ["RestoreAllowed"]
    assert all("s3:RestoreObject" not in json.dumps(s) for s in statements if "Fn::If" not in s)
    assert sam["Parameters"]["AllowArchiveRestore"]["Default"] == "false"


def test_each_function_gets_only_its_own_access(cfn):
    # The planner lists the source but never reads objects.
    assert any(may_be_source(r) for r in grants(cfn, "PlannerRole", "s3:ListBucket"))
    assert not any(may_be_source(r) for r in grants(cfn, "PlannerRole", "s3:GetObject"))
    # The verifier checks OSS only: no source access, no source secret, no role to assume.
    for action in ("s3:ListBucket", "s3:GetObject"):
        assert not any(may_be_source(r) for r in grants(cfn, "VerifierRole", action)), action
    assert grants(cfn, "VerifierRole", "sts:AssumeRole") == []
    assert grants(cfn, "VerifierRole", "secretsmanager:GetSecretValue") == [{"Ref": "OssSecretArn"}]
    # Only the verifier and transfer consume queues, each its own.
    assert grants(cfn, "TransferRole", "sqs:ReceiveMessage") == [
        {"Fn::GetAtt": ["WorkQueue", "Arn"]}, {"Fn::GetAtt": ["EventsQueue", "Arn"]}]
    assert grants(cfn, "VerifierRole", "sqs:ReceiveMessage") == [{"Fn::GetAtt": ["ResultsQueue", "Arn"]}]
    assert grants(cfn, "PlannerRole", "sqs:ReceiveMessage") == []
    # The verifier re-queues work but never sends results.
    assert grants(cfn, "VerifierRole", "sqs:SendMessage") == [{"Fn::GetAtt": ["WorkQueue", "Arn"]}]
    # Each function writes only to its own log group.
    for role, group in (("PlannerRole", "PlannerLogGroup"), ("TransferRole", "TransferLogGroup"),
                        ("VerifierRole", "VerifierLogGroup")):
        assert grants(cfn, role, "logs:PutLogEvents") == [{"Fn::GetAtt": [group, "Arn"]}]
    # Nobody may delete anything.
    for role in of_type(cfn, "AWS::IAM::Role"):
        for action in ("s3:DeleteObject", "sqs:DeleteQueue", "secretsmanager:DeleteSecret", "logs:DeleteLogGroup"):
            assert grants(cfn, role, action) == [], f"{role} may {action}"


def test_scheduler_may_only_invoke_the_planner(cfn):
    statements = [s for owner, s in identity_statements(cfn) if owner == "SchedulerRole"]
    assert statements == [{"Effect": "Allow", "Action": "lambda:InvokeFunction",
                           "Resource": {"Fn::GetAtt": ["PlannerFunction", "Arn"]}}]


# ------------------------------------------------------------------------------------------
# The checks themselves can fail


def _first(cfn, type_name):
    return next(iter(of_type(cfn, type_name).values()))["Properties"]


def _statements(cfn, role):
    return cfn["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]


def break_queue_encryption(cfn):
    cfn["Resources"]["ResultsDlq"]["Properties"]["SqsManagedSseEnabled"] = False


def open_the_bucket(cfn):
    _first(cfn, "AWS::S3::Bucket")["PublicAccessBlockConfiguration"]["RestrictPublicBuckets"] = False


def allow_plain_http(cfn):
    _first(cfn, "AWS::S3::BucketPolicy")["PolicyDocument"]["Statement"][0]["Condition"] = {}


def grant_s3_star(cfn):
    _statements(cfn, "PlannerRole").append({"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::x"})


def grant_star_resource(cfn):
    _statements(cfn, "VerifierRole").append({"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*"})


def attach_managed_policy(cfn):
    cfn["Resources"]["TransferRole"]["Properties"]["ManagedPolicyArns"] = [
        "arn:aws:iam::aws:policy/AmazonS3FullAccess"]


def drop_batch_item_failures(cfn):
    _first(cfn, "AWS::Lambda::EventSourceMapping")["FunctionResponseTypes"] = []


def uncap_concurrency(cfn):
    del _first(cfn, "AWS::Lambda::EventSourceMapping")["ScalingConfig"]


def drop_redrive(cfn):
    del cfn["Resources"]["WorkQueue"]["Properties"]["RedrivePolicy"]


def share_one_dlq(cfn):
    cfn["Resources"]["ResultsQueue"]["Properties"]["RedrivePolicy"]["deadLetterTargetArn"] = {
        "Fn::GetAtt": ["WorkDlq", "Arn"]}


def let_transfer_delete_source(cfn):
    for statement in _statements(cfn, "TransferRole"):
        branch = statement.get("Fn::If", [None, {}])[1]
        if branch.get("Sid") == "SourceRead":
            branch["Action"].append("s3:DeleteObject")


@pytest.mark.parametrize(
    ("mutation", "check", "expected"),
    [
        (break_queue_encryption, unencrypted_queues, "ResultsDlq is not encrypted"),
        (open_the_bucket, bucket_problems, "RestrictPublicBuckets"),
        (allow_plain_http, bucket_problems, "without TLS"),
        (grant_s3_star, wildcard_grants, "'s3:*'"),
        (grant_star_resource, wildcard_grants, "resource '*'"),
        (attach_managed_policy, wildcard_grants, "managed policies"),
        (drop_batch_item_failures, event_source_problems, "ReportBatchItemFailures"),
        (uncap_concurrency, event_source_problems, "MaximumConcurrency"),
        (drop_redrive, redrive_problems, "WorkQueue has no redrive policy"),
        (share_one_dlq, redrive_problems, "WorkDlq is the dead-letter queue of several queues"),
        (let_transfer_delete_source, source_write_grants, "s3:DeleteObject on the source bucket"),
    ],
    ids=lambda v: v.__name__ if callable(v) else None,
)
def test_checks_catch_a_broken_template(cfn, mutation, check, expected):
    broken = copy.deepcopy(cfn)
    mutation(broken)
    problems = check(broken)
    assert any(expected in p for p in problems), problems


def test_delete_grant_is_seen_by_the_transfer_check(cfn):
    broken = copy.deepcopy(cfn)
    let_transfer_delete_source(broken)
    assert any(may_be_source(r) for r in grants(broken, "TransferRole", "s3:DeleteObject"))


# ------------------------------------------------------------------------------------------
# Functions, queues and schedule wiring


def test_functions_are_arm64_custom_runtime_with_json_logs(cfn):
    functions = of_type(cfn, "AWS::Lambda::Function")
    assert set(functions) == set(FUNCTION_CRATES)
    for lid, function in functions.items():
        props = function["Properties"]
        assert props["Runtime"] == "provided.al2023", lid
        assert props["Architectures"] == ["arm64"], lid
        assert props["Handler"] == "bootstrap", lid
        assert props["LoggingConfig"]["LogFormat"] == "JSON", lid
        events = {"FERRY_EVENTS_QUEUE_ARN", "FERRY_EVENTS_JOB"} if lid == "TransferFunction" else set()
        assert set(props["Environment"]["Variables"]) == FERRY_ENV | events, lid
        assert props["Environment"]["Variables"]["RUST_LOG"] == {"Ref": "LogFilter"}


def test_function_timeouts(cfn, sam):
    resources = cfn["Resources"]
    assert resources["PlannerFunction"]["Properties"]["Timeout"] == 900
    assert resources["VerifierFunction"]["Properties"]["Timeout"] == 300
    assert resources["TransferFunction"]["Properties"]["Timeout"] == {"Ref": "TransferTimeout"}
    timeout = sam["Parameters"]["TransferTimeout"]
    assert timeout["Default"] == 900
    assert max(timeout["AllowedValues"]) <= LAMBDA_MAX_TIMEOUT_S


def test_visibility_timeouts_outlast_the_consumers(cfn, sam):
    """A message must stay hidden longer than its consumer can run, or a task still being copied
    is handed to a second worker."""
    work = cfn["Resources"]["WorkQueue"]["Properties"]["VisibilityTimeout"]
    assert work == {"Fn::FindInMap": ["WorkQueueVisibility", {"Ref": "TransferTimeout"}, "Seconds"]}
    table = sam["Mappings"]["WorkQueueVisibility"]
    for timeout in sam["Parameters"]["TransferTimeout"]["AllowedValues"]:
        assert table[str(timeout)]["Seconds"] >= timeout + VISIBILITY_MARGIN_S, timeout
    verifier_timeout = cfn["Resources"]["VerifierFunction"]["Properties"]["Timeout"]
    assert cfn["Resources"]["ResultsQueue"]["Properties"]["VisibilityTimeout"] >= verifier_timeout + VISIBILITY_MARGIN_S


def test_event_sources_feed_the_right_functions(cfn, sam):
    wiring = {
        (esm["Properties"]["FunctionName"]["Ref"], get_att_target(esm["Properties"]["EventSourceArn"]))
        for esm in of_type(cfn, "AWS::Lambda::EventSourceMapping").values()
    }
    assert wiring == {
        ("TransferFunction", "WorkQueue"), ("TransferFunction", "EventsQueue"), ("VerifierFunction", "ResultsQueue")}
    params = sam["Parameters"]
    assert params["TransferBatchSize"]["Default"] == 1
    assert params["VerifierBatchSize"]["Default"] == 10
    assert params["TransferMaxConcurrency"]["Default"] == 50
    assert params["TransferMaxConcurrency"]["MinValue"] == 2  # Lambda's minimum
    assert params["MaxReceiveCount"]["Default"] == 5
    assert params["TransferMemorySize"]["Default"] == 1769


def cargo_lambda_binaries(crate_dir: Path) -> list[str]:
    """Binary names cargo-lambda builds for a crate (each lands in target/lambda/<name>/)."""
    manifest = tomllib.loads((crate_dir / "Cargo.toml").read_text())
    bins = [b["name"] for b in manifest.get("bin", [])]
    return bins or [manifest["package"]["name"]]


def test_code_folders_match_cargo_lambda_output(sam):
    for lid, crate in FUNCTION_CRATES.items():
        (binary,) = cargo_lambda_binaries(REPO / crate)
        code_uri = sam["Resources"][lid]["Properties"]["CodeUri"]
        assert code_uri.rstrip("/") == f"../target/lambda/{binary}", (lid, code_uri)
        # Relative to the template's folder, as sam deploy resolves it.
        assert (TEMPLATE.parent / code_uri).resolve() == REPO / "target" / "lambda" / binary


def test_schedule_starts_an_incremental_run_of_the_job(sam):
    schedule = sam["Resources"]["PlannerSchedule"]
    assert schedule["Condition"] == "HasSchedule"
    assert sam["Resources"]["SchedulerRole"]["Condition"] == "HasSchedule"
    target = schedule["Properties"]["Target"]
    assert target["Arn"] == {"Fn::GetAtt": ["PlannerFunction", "Arn"]}
    event = json.loads(target["Input"]["Fn::Sub"].replace("${JobName}", "photos-to-oss"))
    assert event == {"job_key": "jobs/photos-to-oss/job.json", "incremental": True}
    assert sam["Parameters"]["ScheduleExpression"]["Default"] == ""


def test_outputs_name_what_operators_need(cfn):
    assert {"StateBucketName", "WorkQueueUrl", "ResultsQueueUrl", "WorkDlqUrl", "ResultsDlqUrl",
            "PlannerFunctionName", "TransferFunctionName", "VerifierFunctionName"} <= set(cfn["Outputs"])


def test_dead_letter_queues_raise_alarms(cfn):
    watched = {
        get_att_target(alarm["Properties"]["Dimensions"][0]["Value"])
        for alarm in of_type(cfn, "AWS::CloudWatch::Alarm").values()
        if alarm["Properties"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
    }
    assert watched == {"WorkDlq", "ResultsDlq", "EventsDlq"}


# ------------------------------------------------------------------------------------------
# The example deploy settings


def sam_overrides(entries: list[str]) -> dict[str, str]:
    """`Key=Value` entries as `sam deploy` reads them from samconfig.toml; a value with spaces
    must be wrapped in double quotes."""
    out = {}
    for entry in entries:
        key, sep, value = entry.partition("=")
        assert sep, f"{entry!r} is not Key=Value"
        if value.startswith('"'):
            assert value.endswith('"') and len(value) >= 2, f"{entry!r}: unbalanced quotes"
            value = value[1:-1]
        else:
            assert " " not in value, f"{entry!r}: wrap a value with spaces in double quotes"
        out[key] = value
    return out


def parameter_problems(name: str, spec: dict, value: str) -> list[str]:
    problems = []
    if "AllowedValues" in spec and value not in [str(v) for v in spec["AllowedValues"]]:
        problems.append(f"{name}={value!r} is not one of {spec['AllowedValues']}")
    if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], value):
        problems.append(f"{name}={value!r} does not match {spec['AllowedPattern']}")
    if spec["Type"] == "Number":
        number = float(value)
        if number < spec.get("MinValue", number) or number > spec.get("MaxValue", number):
            problems.append(f"{name}={value!r} is outside [{spec.get('MinValue')}, {spec.get('MaxValue')}]")
    return problems


def test_example_settings_are_valid_parameters(sam):
    config = tomllib.loads(SAMCONFIG_EXAMPLE.read_text())
    deploy = config["default"]["deploy"]["parameters"]
    assert deploy["capabilities"] == "CAPABILITY_IAM"
    overrides = sam_overrides(deploy["parameter_overrides"])
    params = sam["Parameters"]
    assert set(overrides) <= set(params), f"unknown parameters: {set(overrides) - set(params)}"
    required = {name for name, spec in params.items() if "Default" not in spec}
    assert required <= set(overrides), f"required parameters missing: {required - set(overrides)}"
    problems = [p for name, value in overrides.items() for p in parameter_problems(name, params[name], value)]
    assert problems == []
    # The schedule rule: a schedule needs a job.
    if overrides.get("ScheduleExpression"):
        assert overrides.get("JobName")


def test_parameter_defaults_pass_their_own_constraints(sam):
    problems = [
        p
        for name, spec in sam["Parameters"].items()
        if "Default" in spec and spec["Type"] != "CommaDelimitedList"
        for p in parameter_problems(name, spec, str(spec["Default"]))
    ]
    assert problems == []
