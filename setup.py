"""Dataflow workers install the pipeline's code from this file (--setup_file ./setup.py).

All metadata lives in pyproject.toml; this shim exists because Beam's --setup_file
option runs `python setup.py sdist` to stage the package for the workers.
"""

import setuptools

setuptools.setup()
