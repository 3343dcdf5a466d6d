"""The pure core: requests, templates, events and the pipeline; no I/O."""
