"""Shared types, errors, schemas and file helpers used by every stage."""
