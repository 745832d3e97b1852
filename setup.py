"""The compiled part of imagescope; everything else is declared in pyproject.toml."""

from setuptools import Extension, setup

setup(ext_modules=[
    # The tar reader's fast path (imagescope/layer/tar.py). Optional: an install without a C
    # compiler still works, reading every header in Python.
    Extension("imagescope.layer._tarscan", sources=["imagescope/layer/_tarscan.c"], optional=True),
])
