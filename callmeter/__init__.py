"""The ``callmeter`` command line: parses arguments and calls ingest, pricing and dashboard."""
