"""Query results as pandas DataFrames with money kept exact.

DuckDB's ``.df()`` turns DECIMAL into float; every DataFrame pricing and the dashboard build from
SQL comes through :func:`decimal_frame`, so money stays ``Decimal`` until a chart draws it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import duckdb
import pandas as pd

Params = Sequence[object] | Mapping[str, object] | None


def decimal_frame(conn: duckdb.DuckDBPyConnection, sql: str, params: Params = None
                  ) -> pd.DataFrame:
    """Run ``sql`` with ``params`` bound; the rows as a DataFrame, DECIMAL as ``Decimal``."""
    cur = conn.execute(sql, params)
    names = [d[0] for d in cur.description or ()]
    return pd.DataFrame.from_records(cur.fetchall(), columns=names)


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of ``df`` as dicts keyed by column name (the columns here are always names)."""
    return cast(list[dict[str, Any]], df.to_dict("records"))
