"""vesagent: watches OpenStack clouds registered in ONAP A&AI and reports VES events."""

from setuptools import find_packages, setup

setup(
    name="vesagent",
    version="0.1.0",
    description="Reports OpenStack VM, host and VIM faults, heartbeats and measurements "
    "as VES events, configured per cloud region in ONAP A&AI",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.11",
    packages=find_packages(include=["vesagent", "vesagent.*"]),
    package_data={
        "vesagent": ["data/ves/*.json", "data/ves/*.md", "data/demo/*.json"],
        "vesagent.ui": ["templates/ui/*.html", "static/*"],  # the console (issue 17)
    },
    install_requires=[
        "requests>=2.31",
        "tenacity>=9.2",
        "cachetools>=5.3",
        "schedule>=1.2",
        "structlog>=24.1",
        "keystoneauth1>=5.6",
        "pydantic>=2.6,<3",
        "prometheus-client>=0.20",
        "flask>=3.0",
        "cheroot>=10.0",
        "jsonschema>=4.21",
        # Shared state in PostgreSQL (issue 16); the binary wheel needs no libpq on the host.
        "psycopg[binary]>=3.1",
        "psycopg-pool>=3.2",
        # Nova's versioned notifications (issue 19): OpenStack's own listener library.
        "oslo.messaging>=14.0",
    ],
    extras_require={
        "test": [
            "pytest>=8",
            "pytest-timeout>=2.3",
            "hypothesis>=6.100",
            "ruff>=0.5",
            "mypy>=1.10",
            "types-requests",
            "types-cachetools",
            "cryptography>=42",
            # Deployment tests (issue 18): Helm's own Go SDK as a library (wheels for Linux
            # x86_64 only; the chart tests skip elsewhere), Kubernetes schemas, YAML.
            "helm-python-sdk>=0.2.2; sys_platform == 'linux' and platform_machine == 'x86_64'",
            "kubernetes-validate>=1.37",
            "pyyaml>=6",
            "selenium>=4.20",  # the console's browser tests (issue 17)
        ],
    },
    entry_points={"console_scripts": ["vesagent=vesagent.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3.11",
        "License :: OSI Approved :: Apache Software License",
    ],
)
