"""Install tclisten; the bundled references under references/ ship inside the package."""

from setuptools import setup

setup(
    name="tclisten",
    version="0.1.0",
    description="React to Taskcluster's Pulse messages: declarative handlers, a safe kombu loop, "
                "and the whole Taskcluster REST API with Hawk.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MPL-2.0",
    # _thread.interrupt_main(signum), which the stop of a handler on the main thread uses, is 3.10+
    python_requires=">=3.10",
    # references/ and examples/ live at the top of the checkout and ship inside the package
    # (as data: tclisten/taskcluster/reference_data, tclisten/examples), so the installed client
    # finds its references and `tclisten demo` its reactor and messages.
    packages=["tclisten", "tclisten.taskcluster", "tclisten.cli", "tclisten.testing",
              "tclisten.taskcluster.reference_data", "tclisten.examples"],
    package_dir={"tclisten": "tclisten", "tclisten.taskcluster.reference_data": "references",
                 "tclisten.examples": "examples"},
    package_data={"tclisten": ["py.typed"], "tclisten.taskcluster.reference_data": ["*.json", "*/*/*.json", "schemas/*/*/*.json"],
                  "tclisten.examples": ["*.yaml", "messages/*.json", "messages/*.jsonl"]},
    install_requires=["kombu>=5.3", "requests>=2.25", "mohawk>=1.1", "pyyaml>=5.4"],
    extras_require={
        "prometheus": ["prometheus-client>=0.16"],
        "otel": ["opentelemetry-api>=1.20"],  # tclisten.otel: a span per handler call and REST call
        "validate": ["fastjsonschema>=2.16"],  # validate=True: bodies checked against the bundled schemas
        "bench": ["faststream[rabbit]>=0.5", "nameko>=2.14"],  # bench/: the peer frameworks measured
        "test": ["pytest>=7", "hypothesis>=6", "taskcluster>=60", "jsonschema>=4.18", "prometheus-client>=0.16", "build", "wheel", "pika>=1.3",
                 "opentelemetry-api>=1.20", "opentelemetry-sdk>=1.20", "fastjsonschema>=2.16"],
    },
    entry_points={
        "console_scripts": ["tclisten = tclisten.cli:main"],
        "pytest11": ["tclisten = tclisten.testing.pytest_plugin"],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Software Development :: Build Tools",
    ],
)
