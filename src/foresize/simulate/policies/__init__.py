"""Simulator policies, one protocol and one registry per kind."""
