"""Fixtures every test directory may use: the private PostgreSQL server of ``tests/pg.py``."""

pytest_plugins = ["tests.pg"]
