#!/usr/bin/env python3
"""Translates ferry's SAM template into plain CloudFormation, offline.

Why: `cfn-lint` on the SAM template checks the SAM resource schemas only. Many mistakes (a bad
event source mapping setting, a timeout above Lambda's limit, a dangling reference in a
generated resource) only show once SAM has expanded `AWS::Serverless::Function` into a Lambda
function and its event source mappings. `sam build`/`sam package` would do that translation
against a live account; this script does it locally with the `aws-sam-translator` library so the
result can be linted and inspected by tests/infra/test_template.py without network or credentials.

Two things the translator needs from a real deployment are stood in for:

* a region (for ARN partitions and region-specific defaults): `--region`, default us-east-1;
* an S3 location for each function's code: local `CodeUri` folders are replaced by
  `s3://ferry-offline-translation/<LogicalId>.zip`. Only the location changes, never the code.

Managed-policy names are resolved through IAM in a real translation; ferry's template uses none
(every role is written out), so an empty map is passed and any name would fail loudly.

Usage:
    python infra/sam_translate.py infra/template.yaml                # JSON on stdout
    python infra/sam_translate.py infra/template.yaml -o out.json --region eu-central-1

Exit status: 0 on success, 1 when the template is invalid (the translator's messages go to
stderr), 2 on bad usage or an unreadable file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

# Never let boto3 probe the EC2 metadata service; nothing here needs credentials.
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")

try:
    import boto3
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator
    from samtranslator.yaml_helper import yaml_parse
except ImportError as err:  # pragma: no cover - depends on the environment
    sys.exit(f"sam_translate: {err.name} is not installed: run scripts/setup-tools and use .venv/bin/python")

PLACEHOLDER_CODE_BUCKET = "ferry-offline-translation"


def with_s3_code_uris(template: dict[str, Any]) -> dict[str, Any]:
    """Points every function whose code is a local folder at a placeholder S3 object."""
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        properties = resource.setdefault("Properties", {})
        code_uri = properties.get("CodeUri")
        if isinstance(code_uri, str) and not code_uri.startswith("s3://"):
            properties["CodeUri"] = f"s3://{PLACEHOLDER_CODE_BUCKET}/{logical_id}.zip"
    return template


def translate(template_text: str, region: str) -> dict[str, Any]:
    """Returns the CloudFormation template SAM would deploy for `template_text`.

    Raises samtranslator's InvalidDocumentException when the template is not valid SAM.
    """
    template = with_s3_code_uris(yaml_parse(template_text))
    # The session only carries the region (for AWS::Region, AWS::Partition and ARNs); creating
    # it makes no request.
    session = boto3.session.Session(region_name=region)
    translator = Translator(managed_policy_map={}, sam_parser=Parser(), boto_session=session)
    return translator.translate(template, parameter_values={})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("template", type=Path, help="SAM template, e.g. infra/template.yaml")
    parser.add_argument("-o", "--output", type=Path, help="write the JSON here instead of stdout")
    parser.add_argument("--region", default="us-east-1", help="region to translate for (default us-east-1)")
    args = parser.parse_args(argv)

    try:
        text = args.template.read_text(encoding="utf-8")
    except OSError as err:
        print(f"sam_translate: cannot read {args.template}: {err.strerror}", file=sys.stderr)
        return 2

    try:
        cloudformation = translate(text, args.region)
    except InvalidDocumentException as err:
        print(f"sam_translate: {args.template} is not a valid SAM template:", file=sys.stderr)
        for cause in err.causes:
            print(f"  - {cause.message}", file=sys.stderr)
        return 1

    out = json.dumps(cloudformation, indent=1, sort_keys=False) + "\n"
    if args.output:
        args.output.write_text(out, encoding="utf-8")
    else:
        sys.stdout.write(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
