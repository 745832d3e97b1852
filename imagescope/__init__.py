"""imagescope: exact layer-waste accounting for container images."""

__version__ = "0.1.0"
