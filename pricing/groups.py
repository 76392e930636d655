"""Group-by allow-lists: the dimensions a report, a page or a recommendation may group calls
by, each a name that maps to SQL written here. User input picks a name; it never becomes SQL.
"""

from __future__ import annotations

__all__ = ["GROUPS", "KEY_REF_SQL", "LABEL_REF_PREFIX", "TAG_PAIRS_JOIN", "group_column",
           "key_ref_label", "tag_value_sql"]

# name -> column of calls / priced_calls / the rollups
GROUPS: dict[str, str] = {
    "key": "key_id", "model": "model", "base_model": "base_model", "endpoint": "endpoint",
    "billing_mode": "billing_mode", "status": "status", "source": "source",
    "usage_source": "usage_source",
}

# How a page names and filters one key: its fingerprint, else its label for a label-only key
# (new-api's token_name, a LiteLLM alias without the key), as ``label:NAME``. Keyless calls
# (a keyless proxy request, an OpenAI-responses import) have none: NULL, shown "(no key)".
LABEL_REF_PREFIX = "label:"
KEY_REF_SQL = f"coalesce(key_id, '{LABEL_REF_PREFIX}' || key_label)"


def key_ref_label(ref: str) -> str | None:
    """The label of a ``label:NAME`` key reference (None for a fingerprint)."""
    return ref[len(LABEL_REF_PREFIX):] if ref.startswith(LABEL_REF_PREFIX) else None


# One row per tag ``name=value`` of each call (a call with several tags counts under each);
# joined to a relation with a ``tags`` MAP, it gives the column ``t.tag``.
TAG_PAIRS_JOIN = ("JOIN LATERAL (SELECT e.key || '=' || e.value AS tag "
                  "FROM (SELECT unnest(map_entries(tags)) AS e)) t ON true")


def group_column(name: str) -> str:
    """The column for an allow-listed group name; ValueError for any other."""
    try:
        return GROUPS[name]
    except KeyError:
        raise ValueError(f"cannot group by {name!r}; choose one of {', '.join(GROUPS)} "
                         "or tag:NAME") from None


def tag_value_sql(param: str) -> str:
    """One tag's value (the tag name bound as ``param``, e.g. ``$tag`` or ``?``)."""
    return f"map_extract_value(tags, {param})"
