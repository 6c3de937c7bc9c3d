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
    python_requires=">=3.9",
    packages=["tclisten", "tclisten.references"],
    package_dir={"tclisten": "tclisten", "tclisten.references": "references"},
    package_data={"tclisten": ["py.typed"], "tclisten.references": ["*.json", "*/*/*.json"]},
    install_requires=["kombu>=5.3", "requests>=2.25", "mohawk>=1.1", "pyyaml>=5.4"],
    extras_require={
        "prometheus": ["prometheus-client>=0.16"],
        "test": ["pytest>=7", "hypothesis>=6", "taskcluster>=60", "build", "wheel", "pika>=1.3"],
    },
    entry_points={
        "console_scripts": ["tclisten = tclisten.cli:main"],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Software Development :: Build Tools",
    ],
)
