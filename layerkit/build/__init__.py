"""The build side: recipe → lock → installed tree → ZIP, and verify. It runs on a laptop
or a CI runner and never talks to AWS; it never imports layerkit.account."""
