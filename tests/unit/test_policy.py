"""A layer version's policy as Lambda returns it (GetLayerVersionPolicy), read into the
statements audit judges: who is let in, and whether an organization limits it."""

from __future__ import annotations

import json

from layerkit.account.model import PolicyStatement

# The shapes of AWS's documentation for AddLayerVersionPermission and its policy.
POLICY = json.loads("""{
  "Version": "2012-10-17", "Id": "default",
  "Statement": [
    {"Sid": "xaccount", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::210987654321:root"},
     "Action": "lambda:GetLayerVersion"},
    {"Sid": "engineering-org", "Effect": "Allow", "Principal": "*",
     "Action": "lambda:GetLayerVersion",
     "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-t194hfs8cz"}}},
    {"Sid": "public", "Effect": "Allow", "Principal": "*", "Action": "lambda:GetLayerVersion"},
    {"Sid": "never", "Effect": "Deny", "Principal": {"AWS": ["111122223333", "444455556666"]},
     "Action": "lambda:GetLayerVersion"}
  ]
}""")


def test_each_statement_says_whom_it_lets_in_and_under_which_organization() -> None:
    statements = [PolicyStatement.from_json(s) for s in POLICY["Statement"]]
    assert statements == [
        PolicyStatement("xaccount", True, "arn:aws:iam::210987654321:root", None),
        PolicyStatement("engineering-org", True, "*", "o-t194hfs8cz"),
        PolicyStatement("public", True, "*", None),
        PolicyStatement("never", False, "111122223333", None),
    ]


def test_a_statement_without_sid_or_effect_allows_and_has_an_empty_sid() -> None:
    found = PolicyStatement.from_json({"Principal": "123456789012", "OrganizationId": "o-abc"})
    assert found == PolicyStatement("", True, "123456789012", "o-abc")
