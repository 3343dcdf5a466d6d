"""hooklab's version: the package's (`hooklab.__version__`), the distribution's (pyproject.toml
reads it here), and what `hooklab --version` prints without importing anything else."""

__version__ = "0.1.0"
