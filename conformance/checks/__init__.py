"""The checks, one function each, bound into the table's rows (rows.py)."""
