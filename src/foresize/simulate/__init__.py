"""Reference scheduler simulator: a discrete-event engine with pluggable policies."""
