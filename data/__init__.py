"""callmeter's shipped files, installed as the package ``callmeter_data`` (pyproject.toml):
``prices.csv`` (+ ``prices.sources.csv``), ``models.csv`` and ``samples/`` of every log format.
Read them with ``ledger.shipped_file(name)``; this folder is their only copy."""
