"""Sphinx configuration for sklearn-vade.

Build from the repository root with (the gallery runs every example)::

    OMP_NUM_THREADS=1 python -m sphinx -W -b html docs docs/_build/html

Add ``-D plot_gallery=0`` to skip running the examples, and ``-n`` to have every
cross-reference checked (nitpicky mode).

Nothing here reaches the network: intersphinx reads the small inventories committed
in ``_inventories/`` (``_inventories/make_inventories.py`` writes them), and the
examples use data bundled with scikit-learn.
"""

import os
import sys
import warnings

# Document the source tree beside this folder, installed or not.
sys.path.insert(0, os.path.abspath(".."))

import torch  # noqa: E402

import sklearn_vade  # noqa: E402

project = "sklearn-vade"
author = "sklearn-vade developers"
copyright = "sklearn-vade developers, BSD-3-Clause"
release = sklearn_vade.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = ["_build", "_inventories", "_templates", "**.ipynb_checkpoints"]
default_role = "literal"  # `x` in the docstrings is code, as in scikit-learn's
pygments_style = "sphinx"

# -- API reference -------------------------------------------------------------
# api.rst lists the public objects; autosummary writes one page per object into
# generated/ (ignored by git) from the templates in _templates/autosummary/.
autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": True}
autodoc_typehints = "none"
# numpydoc writes the Methods table of each class page, as scikit-learn's does.
numpydoc_show_class_members = True
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
# Link the types in "Parameters" sections; words without an alias stay plain text.
numpydoc_xref_param_type = True
numpydoc_xref_ignore = "all"
numpydoc_xref_aliases = {
    "ndarray": "numpy.ndarray",
    "sparse matrix": "scipy.sparse.csr_matrix",
    "RandomState": "numpy.random.RandomState",
    "Generator": "torch.Generator",
    "Bunch": "sklearn.utils.Bunch",
}

# -- Cross-links to other projects, from local inventories ----------------------
intersphinx_mapping = {
    name: (url, os.path.join("_inventories", f"{name}.inv"))
    for name, url in {
        "python": "https://docs.python.org/3/",
        "numpy": "https://numpy.org/doc/stable/",
        "scipy": "https://docs.scipy.org/doc/scipy/",
        "sklearn": "https://scikit-learn.org/stable/",
        "torch": "https://docs.pytorch.org/docs/stable/",
        "joblib": "https://joblib.readthedocs.io/en/stable/",
        "skops": "https://skops.readthedocs.io/en/stable/",
        "matplotlib": "https://matplotlib.org/stable/",
    }.items()
}
intersphinx_timeout = 1

# -- Gallery -------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "doc_module": ("sklearn_vade",),
    "reference_url": {"sklearn_vade": None},
    # "Examples using ..." on each API page (see _templates/autosummary/).
    "backreferences_dir": os.path.join("generated", "backreferences"),
    "inspect_global_variables": False,
    "remove_config_comments": True,
    "show_memory": False,
    "min_reported_time": 1,
    "download_all_examples": False,
    "matplotlib_animations": False,
}

# The examples run in this process: one torch thread keeps their output the same
# from build to build (a fit depends on the thread count) and leaves the other
# cores of a shared CI machine alone.
torch.set_num_threads(1)
# matplotlib draws the gallery's figures without a display.
os.environ.setdefault("MPLBACKEND", "Agg")
warnings.filterwarnings(
    "ignore", category=UserWarning,
    message="Matplotlib is currently using agg, which is a non-GUI backend",
)

# -- HTML ----------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"sklearn-vade {release}"
html_theme_options = {
    "logo": {"text": "sklearn-vade"},
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc", "sourcelink"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version", "theme-version"],
}
html_sidebars = {"index": [], "install": [], "quickstart": [], "changelog": []}
html_show_sourcelink = False
html_static_path = []
