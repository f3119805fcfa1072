"""Packages for setuptools: ingest and rules, plus migrations/ shipped as ingest._migrations.

pyproject.toml cannot map a top-level folder into an auto-discovered package, so
the list is made here; the checkout keeps ``migrations/`` where Alembic expects it.
"""

from setuptools import find_namespace_packages, setup

setup(
    packages=[
        *find_namespace_packages(include=["ingest*", "rules*"]),
        "ingest._migrations",
        "ingest._migrations.versions",
    ],
    package_dir={"ingest._migrations": "migrations"},
)
