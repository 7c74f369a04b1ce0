"""The build side: recipe → lock → installed tree → ZIP, and verify. It runs on a laptop
or a CI runner, never talks to AWS and never imports layerkit.account. It is not called
build/: that is setuptools' output folder, which .gitignore templates and tools skip."""
