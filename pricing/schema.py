"""Ledger migrations owned by pricing: the ``prices`` table and the ``priced_calls`` view."""

from __future__ import annotations

import duckdb


def m002_prices(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(
        """
        CREATE TABLE IF NOT EXISTS prices (
            model VARCHAR NOT NULL,
            effective_from DATE NOT NULL,
            input DECIMAL(18,9), cached_input DECIMAL(18,9), output DECIMAL(18,9),
            request DECIMAL(18,9), image DECIMAL(18,9), audio_minute DECIMAL(18,9),
            characters DECIMAL(18,9),
            currency VARCHAR DEFAULT 'USD'
        )
        """
    )
    conn.execute(
        """
        CREATE TABLE IF NOT EXISTS price_sheets (
            sheet VARCHAR, sha256 VARCHAR, loaded_at TIMESTAMPTZ, rows INTEGER
        )
        """
    )


def m003_priced_calls(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(
        """
        CREATE OR REPLACE VIEW priced_calls AS
        WITH tok AS (
            SELECT c.call_id, p.*
            FROM calls c ASOF LEFT JOIN prices p
              ON p.model = c.base_model AND CAST(c.started_at AT TIME ZONE 'UTC' AS DATE) >= p.effective_from
        ), req AS (
            SELECT c.call_id, p.*
            FROM calls c ASOF LEFT JOIN prices p
              ON p.model = c.base_model || '-c' AND CAST(c.started_at AT TIME ZONE 'UTC' AS DATE) >= p.effective_from
        )
        SELECT c.*,
          CASE WHEN c.status >= 400 THEN 0 ELSE
            (c.input_tokens - c.cached_tokens) * t.input * 0.000001
            + c.cached_tokens * coalesce(t.cached_input, t.input) * 0.000001
            + c.output_tokens * t.output * 0.000001
          END AS cost_as_token,
          CASE WHEN c.status >= 400 THEN 0 ELSE c.requests * r.request END AS cost_as_request,
          CASE WHEN c.billing_mode = 'request' THEN cost_as_request ELSE cost_as_token END AS cost
        FROM calls c LEFT JOIN tok t USING (call_id) LEFT JOIN req r USING (call_id)
        """
    )
