"""Sphinx configuration for sklearn-vade.

Build with ``python -m sphinx -b html docs docs/_build/html``. No extension here
reaches the network (no intersphinx).
"""

import importlib.util
import os
import sys

# Document the source tree beside this folder, installed or not.
sys.path.insert(0, os.path.abspath(".."))

import sklearn_vade  # noqa: E402

project = "sklearn-vade"
author = "sklearn-vade developers"
copyright = "sklearn-vade developers, BSD-3-Clause"
release = sklearn_vade.__version__
version = ".".join(release.split(".")[:2])

extensions = ["sphinx.ext.autodoc", "sphinx.ext.autosummary"]
if importlib.util.find_spec("numpydoc") is not None:
    extensions.append("numpydoc")
    # The API page lists members itself; numpydoc's member tables would repeat them.
    numpydoc_show_class_members = False
else:
    extensions.append("sphinx.ext.napoleon")
    napoleon_google_docstring = False
    napoleon_use_param = False
    napoleon_use_ivar = True

# The API page writes its own entries: no stub files generated into the source tree.
autosummary_generate = False
autodoc_default_options = {"members": False}

root_doc = "index"
exclude_patterns = ["_build"]
html_theme = "alabaster"
