"""The account side: ZIP → AWS → findings (publish, sync, audit, rollout, prune). The only
code that calls boto3 is here, in clients.py and gateways.py; it never imports
layerkit.builder."""
