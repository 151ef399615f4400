"""The package's shape (docs/architecture.rst): modules on floors, each importing
only from floors below it, and no import cycle."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "sklearn_vade"
# Lowest floor first. A module may import from strictly lower floors only.
FLOORS = [
    {"_utils", "_elbo", "_progress", "_metrics", "_version", "_dask",
     "_distributed"},  # helpers
    {"_outofcore"},  # reading memory-mapped X a block at a time
    {"_network", "_data", "_validation"},  # the model, the data, the configuration
    {"_engine", "_inference"},  # the epoch engine; passes of a fitted model
    {"_pretrain", "_init", "_training"},  # the three phases of fit
    {"_run"},  # one run of fit, from one seed
    {"_estimator"},  # the scikit-learn estimator
    {"_selection", "datasets"},  # functions users call
    {"_cli", "__init__"},  # the command line; the public names
    {"__main__"},  # python -m sklearn_vade
]


def internal_imports(path):
    """The package modules that a module imports (``from . import x``, ``from .x
    import y``, at any depth of the file); ``.`` alone is ``__init__``."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name if (PACKAGE / f"{alias.name}.py").exists()
                             else "__init__" for alias in node.names)
    return found


def floor_of(module):
    return next(i for i, floor in enumerate(FLOORS) if module in floor)


def test_every_module_has_a_floor():
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    assert modules == set().union(*FLOORS)


def test_modules_import_only_from_lower_floors():
    for path in PACKAGE.glob("*.py"):
        for imported in internal_imports(path):
            assert floor_of(imported) < floor_of(path.stem), (path.stem, imported)


def test_the_estimator_module_is_a_fifth_of_the_package_at_most():
    lines = {p.stem: len(p.read_text().splitlines()) for p in PACKAGE.glob("*.py")}
    assert lines["_estimator"] <= 0.2 * sum(lines.values()), lines["_estimator"]
