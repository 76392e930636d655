"""Dashboard pages: each only lays out (filters, one query per widget, one chart builder);
Streamlit runs them as scripts through dashboard/app.py."""
