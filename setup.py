"""The packages of the wheel, found rather than listed: src/vae with its subpackages, and conf/ as vae.conf.

Every folder of conf/ is named a package, so setuptools ships its YAML files (pyproject.toml holds the rest).
"""

from setuptools import find_namespace_packages, setup

CONF = find_namespace_packages(".", include=["conf", "conf.*"])  # conf, conf.model, conf.hydra.launcher, ...

setup(
    packages=[*find_namespace_packages("src", include=["vae", "vae.*"]), *(f"vae.{name}" for name in CONF)],
    package_dir={"": "src", **{f"vae.{name}": name.replace(".", "/") for name in CONF}},
)
