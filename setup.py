"""The one packaging fact pyproject.toml cannot state: the top-level templates/ folder ships as
the package ``hub.templates`` (package-dir mapping), so the wheel carries the templates inside
``hub/`` and importlib.resources finds them in site-packages and in an editable install alike.
Everything else (metadata, dependencies, package data) is in pyproject.toml.
"""

from setuptools import find_namespace_packages, setup

TOP = ("hub", "connectors", "scheduler")

setup(
    packages=[
        *find_namespace_packages(include=[f"{top}{sub}" for top in TOP for sub in ("", ".*")]),
        "hub.templates",
    ],
    package_dir={"hub.templates": "templates"},
)
