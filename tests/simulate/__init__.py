"""Tests of the reference scheduler simulator."""
