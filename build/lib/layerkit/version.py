"""layerkit's version: recorded in every manifest and build key."""

__version__ = "0.1.0"
