"""Pricing: the price sheet, exact per-token and per-request costs, break-even and savings."""
