"""Dashboard: the Streamlit app over the ledger (entry ``app.py``, pages in ``app_pages/``).

``queries`` holds every read the pages make, ``rollup`` the hourly summary table those reads
prefer, ``charts`` the plotly builders; pages only lay out widgets.
"""
