"""Every test process is an entry point: pricing's migrations and hooks are registered with the
ledger core before any test opens a ledger (as callmeter's CLI and dashboard do)."""

import pricing

pricing.install()
