"""DuckLake tests: a real PostgreSQL server, the lake extra (see conftest.py)."""
