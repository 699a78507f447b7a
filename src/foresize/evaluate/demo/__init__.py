"""The demo: the whole foresize journey on one telemetry frame (``foresize demo``).

``run.run_demo`` composes each stage from the library piece that owns it and writes
every artefact into one folder atomically; ``inputs`` gathers the telemetry (synthetic,
or a registered dataset read offline) and the assumptions telemetry cannot make;
``plan`` (the model and the plan), ``forecast`` and ``simulate`` hold the stages' glue,
``summary`` the headline numbers.
"""
