"""Serving: the champions behind a Python interface and an HTTP API."""
