"""Renderers: pure functions of a Report (or its parts) to text."""
