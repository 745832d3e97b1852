"""`python -m imagescope` entry point."""

from imagescope.cli import main

main()
