"""The package's version (read by pyproject.toml, the CLI and ``__init__``)."""

__version__ = "0.1.0.dev0"
