"""The command line: parse, call one core function, render (`layerkit.cli:main`)."""

from layerkit.cli.app import main

__all__ = ["main"]
