"""Map the top-level checks/, templates/ and runbooks/ inside the readyctl package in the wheel."""

from setuptools import find_namespace_packages, setup

packages = find_namespace_packages(include=["readyctl", "readyctl.*"], exclude=["*__pycache__*"])
for top in ("checks", "templates", "runbooks"):
    packages.append(f"readyctl.{top}")
    packages += [
        f"readyctl.{top}.{p}" for p in find_namespace_packages(top, exclude=["*__pycache__*"])
    ]

setup(
    packages=packages,
    package_dir={
        "readyctl": "readyctl",
        "readyctl.checks": "checks",
        "readyctl.templates": "templates",
        "readyctl.runbooks": "runbooks",
    },
)
