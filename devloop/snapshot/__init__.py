"""A session snapshot: one self-contained HTML file of the dashboard, for bug reports."""
