"""Plumbing for the tests: real servers on loopback and small helpers."""
