"""Write the intersphinx inventories that the documentation links against.

The docs cross-link to scikit-learn, numpy, scipy, torch, Python, joblib, skops and
matplotlib through ``sphinx.ext.intersphinx``. Its inventories are normally
downloaded at build time; these machines cannot download them, and a build that
needs the network is not reproducible, so ``conf.py`` points intersphinx at the
small local inventories written here. Each lists only the external objects that the
docs, the docstrings and the gallery actually reference, with their public URLs.

Run it from anywhere after adding an entry, and commit the ``.inv`` files::

    python docs/_inventories/make_inventories.py

The files are Sphinx version 2 inventories: four header lines, then zlib-compressed
lines ``name domain:role priority uri dispname``. ``uri`` is relative to the base URL
given in ``intersphinx_mapping``; a trailing ``$`` stands for ``name``, and a
``dispname`` of ``-`` means ``name``. In the table below every ``$`` of a URI stands
for the entry's name (the script expands it, then abbreviates a final ``#name``
again). The output is byte-for-byte deterministic.
"""

import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _sklearn_api(name, role="py:class"):
    return (name, role, "modules/generated/" + name + ".html#$")


# project -> (version, base URL (documentation only, see conf.py), entries)
# An entry is (name, "domain:role", uri relative to the base URL[, dispname]).
INVENTORIES = {
    "sklearn": ("1.9", "https://scikit-learn.org/stable/", [
        _sklearn_api("sklearn.base.BaseEstimator"),
        _sklearn_api("sklearn.base.ClusterMixin"),
        _sklearn_api("sklearn.base.TransformerMixin"),
        _sklearn_api("sklearn.base.clone", "py:function"),
        _sklearn_api("sklearn.cluster.KMeans"),
        _sklearn_api("sklearn.datasets.fetch_openml", "py:function"),
        _sklearn_api("sklearn.datasets.get_data_home", "py:function"),
        _sklearn_api("sklearn.datasets.load_breast_cancer", "py:function"),
        _sklearn_api("sklearn.datasets.load_digits", "py:function"),
        _sklearn_api("sklearn.datasets.load_wine", "py:function"),
        _sklearn_api("sklearn.datasets.make_blobs", "py:function"),
        _sklearn_api("sklearn.exceptions.ConvergenceWarning", "py:exception"),
        _sklearn_api("sklearn.feature_extraction.text.TfidfVectorizer"),
        _sklearn_api("sklearn.metrics.ConfusionMatrixDisplay"),
        _sklearn_api("sklearn.metrics.adjusted_rand_score", "py:function"),
        _sklearn_api("sklearn.metrics.confusion_matrix", "py:function"),
        _sklearn_api("sklearn.metrics.normalized_mutual_info_score", "py:function"),
        _sklearn_api("sklearn.mixture.GaussianMixture"),
        _sklearn_api("sklearn.model_selection.GridSearchCV"),
        _sklearn_api("sklearn.model_selection.KFold"),
        _sklearn_api("sklearn.model_selection.train_test_split", "py:function"),
        _sklearn_api("sklearn.pipeline.Pipeline"),
        _sklearn_api("sklearn.pipeline.make_pipeline", "py:function"),
        _sklearn_api("sklearn.preprocessing.MinMaxScaler"),
        _sklearn_api("sklearn.preprocessing.StandardScaler"),
        _sklearn_api("sklearn.utils.Bunch"),
        _sklearn_api("sklearn.utils.estimator_checks.parametrize_with_checks",
                     "py:function"),
        _sklearn_api("sklearn.utils.metadata_routing.MetadataRequest"),
        # Labels that inherited docstrings (set_output, get_metadata_routing) use.
        ("metadata_routing", "std:label", "metadata_routing.html#metadata-routing",
         "Metadata Routing"),
        ("df_output_transform", "std:label",
         "modules/df_output_transform.html#df-output-transform",
         "Pandas/Polars Output for Transformers with set_output API"),
        ("sphx_glr_auto_examples_miscellaneous_plot_set_output.py", "std:label",
         "auto_examples/miscellaneous/plot_set_output.html"
         "#sphx-glr-auto-examples-miscellaneous-plot-set-output-py",
         "Introducing the set_output API"),
        ("model_persistence", "std:label",
         "model_persistence.html#model-persistence", "Model persistence"),
    ]),
    "numpy": ("2.4", "https://numpy.org/doc/stable/", [
        ("numpy", "py:module", "reference/index.html#module-$"),
        ("numpy.ndarray", "py:class", "reference/generated/$.html#$"),
        # numpydoc links "array_like" and "array-like" in parameter types here.
        ("array_like", "std:term", "glossary.html#term-array_like"),
        ("numpy.float32", "py:attribute", "reference/arrays.scalars.html#$"),
        ("numpy.float64", "py:attribute", "reference/arrays.scalars.html#$"),
        ("numpy.random.RandomState", "py:class",
         "reference/random/legacy.html#$"),
        ("numpy.argmax", "py:function", "reference/generated/$.html#$"),
        ("numpy.bincount", "py:function", "reference/generated/$.html#$"),
        ("numpy.linalg.eigh", "py:function", "reference/generated/$.html#$"),
        ("numpy.load", "py:function", "reference/generated/$.html#$"),
        ("numpy.save", "py:function", "reference/generated/$.html#$"),
    ]),
    "scipy": ("1.17", "https://docs.scipy.org/doc/scipy/", [
        ("scipy.sparse", "py:module", "reference/sparse.html#module-$"),
        ("scipy.sparse.csr_matrix", "py:class", "reference/generated/$.html#$"),
        ("scipy.sparse.csc_matrix", "py:class", "reference/generated/$.html#$"),
        ("scipy.optimize.linear_sum_assignment", "py:function",
         "reference/generated/$.html#$"),
        ("scipy.special.logsumexp", "py:function", "reference/generated/$.html#$"),
    ]),
    "torch": ("2.13", "https://docs.pytorch.org/docs/stable/", [
        ("torch", "py:module", "torch.html#module-$"),
        ("torch.Generator", "py:class", "generated/$.html#$"),
        ("torch.Tensor", "py:class", "tensors.html#$"),
        ("torch.autocast", "py:class", "amp.html#$"),
        ("torch.bfloat16", "py:attribute", "tensor_attributes.html#torch-dtype",
         "torch.bfloat16"),
        ("torch.cuda.is_available", "py:function", "generated/$.html#$"),
        ("torch.get_num_threads", "py:function", "generated/$.html#$"),
        ("torch.logsumexp", "py:function", "generated/$.html#$"),
        ("torch.manual_seed", "py:function", "generated/$.html#$"),
        ("torch.nn.Module", "py:class", "generated/$.html#$"),
        ("torch.optim.Adam", "py:class", "generated/$.html#$"),
        ("torch.set_num_threads", "py:function", "generated/$.html#$"),
        ("torch.use_deterministic_algorithms", "py:function",
         "generated/$.html#$"),
    ]),
    "python": ("3", "https://docs.python.org/3/", [
        ("pickle", "py:module", "library/pickle.html#module-$"),
        ("pickle.dump", "py:function", "library/pickle.html#$"),
        ("pickle.load", "py:function", "library/pickle.html#$"),
        ("argparse", "py:module", "library/argparse.html#module-$"),
        # numpydoc links "bool" in parameter types here.
        ("bltin-boolean-values", "std:label",
         "library/stdtypes.html#bltin-boolean-values", "Boolean Type"),
        ("FloatingPointError", "py:exception", "library/exceptions.html#$"),
        ("KeyboardInterrupt", "py:exception", "library/exceptions.html#$"),
        ("TypeError", "py:exception", "library/exceptions.html#$"),
        ("UserWarning", "py:exception", "library/exceptions.html#$"),
        ("ValueError", "py:exception", "library/exceptions.html#$"),
        ("OSError", "py:exception", "library/exceptions.html#$"),
        ("bool", "py:class", "library/functions.html#$"),
        ("dict", "py:class", "library/stdtypes.html#$"),
        ("float", "py:class", "library/functions.html#$"),
        ("int", "py:class", "library/functions.html#$"),
        ("list", "py:class", "library/stdtypes.html#$"),
        ("str", "py:class", "library/stdtypes.html#$"),
        ("tuple", "py:class", "library/stdtypes.html#$"),
        ("object", "py:class", "library/functions.html#$"),
        ("callable", "py:function", "library/functions.html#$"),
        ("None", "py:data", "library/constants.html#$"),
        ("True", "py:data", "library/constants.html#$"),
        ("False", "py:data", "library/constants.html#$"),
        ("os.PathLike", "py:class", "library/os.html#$"),
        ("warnings.catch_warnings", "py:class", "library/warnings.html#$"),
        ("warnings.simplefilter", "py:function", "library/warnings.html#$"),
    ]),
    "joblib": ("1.5", "https://joblib.readthedocs.io/en/stable/", [
        ("joblib.dump", "py:function", "generated/$.html#$"),
        ("joblib.load", "py:function", "generated/$.html#$"),
    ]),
    "skops": ("0.13", "https://skops.readthedocs.io/en/stable/", [
        ("skops.io", "py:module", "modules/classes.html#module-$"),
        ("skops.io.dump", "py:function", "modules/classes.html#$"),
        ("skops.io.load", "py:function", "modules/classes.html#$"),
        ("skops.io.get_untrusted_types", "py:function", "modules/classes.html#$"),
    ]),
    "matplotlib": ("3.10", "https://matplotlib.org/stable/", [
        ("matplotlib.pyplot", "py:module", "api/pyplot_summary.html#module-$"),
        ("matplotlib.pyplot.subplots", "py:function", "api/_as_gen/$.html#$"),
        ("matplotlib.pyplot.show", "py:function", "api/_as_gen/$.html#$"),
        ("matplotlib.patches.Ellipse", "py:class", "api/_as_gen/$.html#$"),
        ("matplotlib.axes.Axes.imshow", "py:method", "api/_as_gen/$.html#$"),
        ("matplotlib.axes.Axes.bar", "py:method", "api/_as_gen/$.html#$"),
        ("matplotlib.axes.Axes.scatter", "py:method", "api/_as_gen/$.html#$"),
        ("matplotlib.axes.Axes.errorbar", "py:method", "api/_as_gen/$.html#$"),
    ]),
}


def inventory_bytes(project, version, entries):
    """The bytes of a Sphinx v2 inventory holding ``entries``."""
    header = (
        "# Sphinx inventory version 2\n"
        f"# Project: {project}\n"
        f"# Version: {version}\n"
        "# The remainder of this file is compressed using zlib.\n"
    ).encode("utf-8")
    lines = []
    for entry in sorted(entries):
        name, role, uri = entry[:3]
        dispname = entry[3] if len(entry) > 3 else "-"
        uri = uri.replace("$", name)
        if uri.endswith("#" + name):  # the usual anchor: abbreviate as Sphinx does
            uri = uri[: -len(name)] + "$"
        lines.append(f"{name} {role} 1 {uri} {dispname}\n")
    return header + zlib.compress("".join(lines).encode("utf-8"), 9)


def main():
    for key, (version, _, entries) in INVENTORIES.items():
        names = [entry[0] for entry in entries]
        if len(set(names)) != len(names):
            raise ValueError(f"{key}: duplicate names in the inventory")
        path = HERE / f"{key}.inv"
        path.write_bytes(inventory_bytes(key, version, entries))
        print(f"{path.name}: {len(entries)} objects")


if __name__ == "__main__":
    main()
