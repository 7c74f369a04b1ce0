"""Infrastructure as code: the layer version ARNs written in a team's sources (SAM and
CloudFormation templates, CDK apps, serverless.yml, Terraform, any text file), found and
rewritten as text, byte for byte. Knows no account: `account/bump.py` decides the versions.
Imports neither wing.
"""
