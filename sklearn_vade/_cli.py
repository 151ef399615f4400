"""The command line: ``sklearn-vade fit | predict | demo`` (or ``python -m ...``).

Every failure a user can cause (a missing or malformed file, bad options, data the
estimator refuses) ends with one line on stderr and exit status 2, never a traceback.
"""

import argparse
import csv
import itertools
import os
import pickle
import re
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import InvalidParameterError, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._estimator import VaDEClustering
from ._inference import draw_codes
from ._version import __version__

PROG = "sklearn-vade"
EXIT_USER_ERROR = 2


class CLIError(Exception):
    """A problem with the user's input, reported as one line."""


# ------------------------------------------------------------------- reading data
def read_data(path, delimiter=",", npz_key=None):
    """X as a 2-D array from a CSV (header detected), ``.npy`` or ``.npz`` file."""
    path = Path(path)
    if not path.exists():
        raise CLIError(f"data file '{path}' does not exist")
    if path.is_dir():
        raise CLIError(f"'{path}' is a directory, not a data file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            X = np.load(path, allow_pickle=False)
        elif suffix == ".npz":
            X = _read_npz(path, npz_key)
        else:
            X = _read_csv(path, delimiter)
    except (ValueError, OSError, EOFError) as exc:
        if isinstance(exc, CLIError):
            raise
        raise CLIError(f"cannot read '{path}': {_first_line(exc)}") from None
    X = np.asarray(X)
    if X.ndim == 1:
        X = X.reshape(-1, 1)
    if X.ndim != 2:
        raise CLIError(f"'{path}' holds an array of {X.ndim} dimensions; expected a "
                       "table (rows = samples, columns = features)")
    if X.dtype.kind not in "biuf":
        raise CLIError(f"'{path}' holds {X.dtype} values; expected numbers")
    if X.shape[0] == 0:
        raise CLIError(f"'{path}' holds no rows")
    bad = ~np.isfinite(X) if X.dtype.kind == "f" else np.zeros(X.shape, bool)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise CLIError(
            f"'{path}' has a missing or non-finite value ({X[row, col]}) at data row "
            f"{row + 1}, column {col + 1} ({int(bad.sum())} in all); fill or drop "
            "them first")
    return X


def _read_npz(path, key):
    with np.load(path, allow_pickle=False) as archive:
        names = list(archive.files)
        if key is None:
            if "X" in names:
                key = "X"
            elif len(names) == 1:
                key = names[0]
            else:
                raise CLIError(f"'{path}' holds several arrays ({', '.join(names)}) "
                               "and none is named X; choose one with --npz-key")
        if key not in names:
            raise CLIError(f"'{path}' has no array '{key}' (it has: "
                           f"{', '.join(names)})")
        return archive[key]


def _is_number(cell):
    try:
        float(cell)
    except ValueError:
        return False
    return True


# Excel and others start UTF-8 files with a byte-order mark; this codec drops it.
_CSV_ENCODING = "utf-8-sig"


def _read_csv(path, delimiter):
    """Parse a numeric CSV; a first row without any number in it is a header.

    A first row with both numbers and other cells (e.g. a missing value) is data,
    so that its bad cell is reported rather than the row silently skipped. A first
    data row (or header) whose cells are numbers joined by another delimiter is
    refused with the ``--delimiter`` to pass: it is neither a header nor data.
    """
    with open(path, newline="", encoding=_CSV_ENCODING) as f:
        rows = list(itertools.islice(csv.reader(f, delimiter=delimiter), 2))
    if not rows:
        raise CLIError(f"'{path}' is empty")
    header = not any(_is_number(cell) for cell in rows[0])
    for line_number, row in enumerate(rows[:1 + int(header)], start=1):
        _check_delimiter(path, delimiter, line_number, row)
    try:
        with warnings.catch_warnings():
            # a header and no data: numpy warns, then the row check below refuses
            warnings.simplefilter("ignore", UserWarning)
            X = np.loadtxt(path, delimiter=delimiter, skiprows=int(header), ndmin=2,
                           dtype=np.float64, encoding=_CSV_ENCODING)
    except ValueError:
        _explain_csv_error(path, delimiter, header)
        raise
    return X


# Delimiters that a file given without the right --delimiter may use instead. Not
# ',': in a ';'-separated file '1,5' is more likely a decimal comma than two cells.
_OTHER_DELIMITERS = (";", "\t")


def _delimiter_name(delimiter):
    return "tab" if delimiter == "\t" else repr(delimiter)


def _check_delimiter(path, delimiter, line_number, row):
    """Refuse a row whose cell is numbers joined by another delimiter."""
    for other in _OTHER_DELIMITERS:
        if other == delimiter:
            continue
        for cell in row:
            pieces = [piece for piece in cell.split(other) if piece.strip()]
            if len(pieces) > 1 and all(_is_number(piece) for piece in pieces):
                raise CLIError(
                    f"'{path}' line {line_number} looks {_delimiter_name(other)}-"
                    f"separated, not {_delimiter_name(delimiter)}-separated: pass "
                    f"--delimiter {_delimiter_name(other)}")


def _explain_csv_error(path, delimiter, header):
    """Find the first bad row or cell of a CSV that numpy refused, and say where."""
    with open(path, newline="", encoding=_CSV_ENCODING) as f:
        reader = csv.reader(f, delimiter=delimiter)
        if header:
            next(reader)
        n_fields = None
        for line_number, row in enumerate(reader, start=1 + int(header)):
            if not row:
                continue
            if n_fields is None:
                n_fields = len(row)
            if len(row) != n_fields:
                raise CLIError(f"'{path}' line {line_number} has {len(row)} fields, "
                               f"expected {n_fields} like the first data row")
            for column, cell in enumerate(row, start=1):
                if not cell.strip():
                    raise CLIError(f"'{path}' line {line_number}, column {column} is "
                                   "empty: missing values are not supported")
                if not _is_number(cell):
                    raise CLIError(f"'{path}' line {line_number}, column {column}: "
                                   f"{cell.strip()!r} is not a number")


def _first_line(exc):
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


# ------------------------------------------------------------ writing and models
def write_labels(path, labels):
    """One cluster label per input row, under a ``cluster`` header."""
    np.savetxt(path, labels.reshape(-1, 1), fmt="%d", header="cluster", comments="")


def write_proba(path, proba):
    header = ",".join(f"cluster_{k}" for k in range(proba.shape[1]))
    np.savetxt(path, proba, fmt="%.10g", delimiter=",", header=header, comments="")


def save_model(model, path):
    """``.skops`` through skops (safe to load), anything else with pickle."""
    path = Path(path)
    if path.suffix.lower() == ".skops":
        sio = _import_skops()
        sio.dump(model, path)
    else:
        with open(path, "wb") as f:
            pickle.dump(model, f, protocol=pickle.HIGHEST_PROTOCOL)


TRUSTED_TYPES = ["sklearn_vade._estimator.VaDEClustering"]


def load_model(path):
    """Load a model saved by ``fit --save-model``.

    ``.skops`` files are loaded trusting only the estimator class (and skops' own
    defaults); other files are pickles, which can run code: load only your own.
    """
    path = Path(path)
    if not path.exists():
        raise CLIError(f"model file '{path}' does not exist")
    if path.suffix.lower() == ".skops":
        sio = _import_skops()
        try:
            untrusted = sio.get_untrusted_types(file=path)
        except Exception as exc:  # a corrupt archive: skops raises several kinds
            raise CLIError(f"cannot read model '{path}': {_first_line(exc)}") from None
        unexpected = sorted(set(untrusted) - set(TRUSTED_TYPES))
        if unexpected:
            raise CLIError(f"'{path}' holds types that are not part of a "
                           f"VaDEClustering model ({', '.join(unexpected)}); refusing "
                           "to load it")
        model = sio.load(path, trusted=TRUSTED_TYPES)
    else:
        try:
            with open(path, "rb") as f:
                model = pickle.load(f)
        except Exception as exc:  # unpickling can fail in many ways
            raise CLIError(f"cannot read model '{path}': {_first_line(exc)}") from None
    if not isinstance(model, VaDEClustering):
        raise CLIError(f"'{path}' does not hold a VaDEClustering model "
                       f"(found {type(model).__name__})")
    try:
        check_is_fitted(model)
    except NotFittedError:
        raise CLIError(f"'{path}' holds a VaDEClustering model that was never "
                       "fitted; save a fitted one with 'sklearn-vade fit DATA -k K "
                       "-o labels.csv --save-model FILE'") from None
    return model


def _import_skops():
    try:
        import skops.io as sio
    except ImportError:
        raise CLIError("saving or loading .skops files needs skops: pip install "
                       "skops (or save to a .pkl file)") from None
    return sio


# ------------------------------------------------------------------- commands
def _hidden_layer_sizes(text):
    if text.strip().lower() == "none":  # no hidden layer: linear encoder and decoder
        return ()
    try:
        sizes = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive integers, got {text!r}") from None
    if any(s <= 0 for s in sizes):
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive integers, got {text!r}")
    if not sizes:
        raise argparse.ArgumentTypeError(
            f"expected at least one layer width, e.g. 64,64 (or 'none' for a "
            f"linear network); got {text!r}")
    return sizes


def _delimiter(text):
    """One character; ``tab`` (or a typed backslash-t) for a tab."""
    if text in ("tab", "\\t"):
        return "\t"
    if len(text) != 1:
        raise argparse.ArgumentTypeError(
            f"expected one character, or tab, got {text!r}")
    return text


def _int_or_auto(text):
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an integer or 'auto', got {text!r}") from None


# "The 'max_epochs' parameter of VaDEClustering must be X. Got V instead."
_PARAMETER_ERROR = re.compile(
    r"The '(?P<name>\w+)' parameter of \w+ must be (?P<expected>.*)\. "
    r"Got (?P<got>.*) instead\.", re.DOTALL)
# scikit-learn's names of the constraints, as a command-line user reads them
_CONSTRAINT_WORDS = ((r"a str among \{'auto'\}", "'auto'"),
                     (r"\ban int\b", "an integer"), (r"\ba float\b", "a number"),
                     (r", an instance of '[\w.]+' or None$", ""))


def _validate_options(model):
    """The estimator's parameter checks, before any data is read, with the flag the
    user typed (--max-epochs) in place of the parameter's name (max_epochs)."""
    try:
        model._validate_params()
    except InvalidParameterError as exc:
        match = _PARAMETER_ERROR.fullmatch(str(exc))
        if match is None:
            raise
        expected = match["expected"]
        for pattern, words in _CONSTRAINT_WORDS:
            expected = re.sub(pattern, words, expected)
        flag = "--" + match["name"].replace("_", "-")
        raise CLIError(f"argument {flag}: expected {expected}, got "
                       f"{match['got']}") from None


def _verbosity(args):
    if args.verbose is not None:
        return args.verbose
    return 1 if sys.stderr.isatty() else 0


def _check_writable(*paths):
    """Refuse, before any work, outputs whose folder does not exist."""
    for path in paths:
        if path is not None and not Path(path).resolve().parent.is_dir():
            raise CLIError(f"cannot write '{path}': its folder does not exist")


def cmd_fit(args):
    _check_writable(args.output, args.proba, args.save_model)
    if args.save_model and Path(args.save_model).suffix.lower() == ".skops":
        _import_skops()  # fail now, not after the fit
    model = VaDEClustering(
        n_clusters=args.n_clusters, latent_dim=args.latent_dim,
        hidden_layer_sizes=args.hidden_layer_sizes, likelihood=args.likelihood,
        pi_update=args.pi_update, init_params=args.init_params,
        pretrain_epochs=args.pretrain_epochs,
        max_epochs=args.max_epochs, batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        reconstruction_weight=args.reconstruction_weight, n_init=args.n_init,
        tol=args.tol,
        device=args.device, precision=args.precision,
        inference_precision=args.inference_precision,
        random_state=args.random_state, verbose=_verbosity(args),
        memory=args.memory)
    _validate_options(model)
    X = read_data(args.data, args.delimiter, args.npz_key)
    start = time.perf_counter()
    model.fit(X)
    seconds = time.perf_counter() - start
    write_labels(args.output, model.labels_)
    if args.proba:
        write_proba(args.proba, model.predict_proba(X))
    if args.save_model:
        save_model(model, args.save_model)
    sizes = np.bincount(model.labels_, minlength=model.n_clusters)
    print(f"fitted {X.shape[0]} rows x {X.shape[1]} features into {model.n_clusters} "
          f"clusters in {seconds:.1f} s (ELBO {model.lower_bound_:.4g} nats per row, "
          f"likelihood {model.likelihood_}); cluster sizes {sizes.tolist()}; labels "
          f"written to {args.output}")


def cmd_predict(args):
    _check_writable(args.output, args.proba)
    model = load_model(args.model)
    model.set_params(inference_precision=args.inference_precision)
    X = read_data(args.data, args.delimiter, args.npz_key)
    if X.shape[1] != model.n_features_in_:
        raise CLIError(f"'{args.data}' has {X.shape[1]} features but the model was "
                       f"fitted on {model.n_features_in_}")
    proba = model.predict_proba(X)
    write_labels(args.output, proba.argmax(axis=1))
    if args.proba:
        write_proba(args.proba, proba)
    print(f"predicted {X.shape[0]} rows; labels written to {args.output}")


DEMO_NEXT = ("next: cluster your own data with 'sklearn-vade fit your.csv -k K -o "
             "labels.csv' ('sklearn-vade fit --help' for the options and a size hint)")


def cmd_demo(args):
    import torch
    from sklearn.cluster import KMeans
    from sklearn.datasets import load_digits
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    from ._metrics import cluster_accuracy

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    print(f"digits: {X.shape[0]} samples, {X.shape[1]} features, 10 classes "
          "(labels used only to score)")
    vade = VaDEClustering(n_clusters=10, random_state=args.seed,
                          verbose=_verbosity(args))
    kmeans = KMeans(n_clusters=10, n_init=10, random_state=args.seed)
    print(f"{'method':<8} {'ACC':>6} {'NMI':>6} {'ARI':>6} {'fit s':>7}")
    for name, model in (("VaDE", vade), ("KMeans", kmeans)):
        start = time.perf_counter()
        labels = model.fit_predict(X)
        seconds = time.perf_counter() - start
        print(f"{name:<8} {cluster_accuracy(y, labels):6.3f} "
              f"{normalized_mutual_info_score(y, labels):6.3f} "
              f"{adjusted_rand_score(y, labels):6.3f} {seconds:7.1f}", flush=True)
    if args.figure:
        _draw_samples(vade, args.figure, args.seed)
    print(DEMO_NEXT)


def _draw_samples(vade, path, seed):
    """A grid of generated digits: one row per cluster (most weight first), codes
    drawn from that component's N(mu_c, sigma2_c) and decoded."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no figure drawn (pip install matplotlib)")
        return
    n_per_cluster = 10
    order = np.argsort(-vade.weights_)
    fig, axes = plt.subplots(vade.n_clusters, n_per_cluster,
                             figsize=(n_per_cluster * 0.8, vade.n_clusters * 0.8))
    for row, k in enumerate(order):
        z = draw_codes(vade.means_, vade.covariances_, np.full(n_per_cluster, k),
                       np.random.RandomState(seed + row))
        images = vade.inverse_transform(z)
        for col in range(n_per_cluster):
            ax = axes[row, col]
            ax.imshow(images[col].reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[row, 0].set_ylabel(f"{k}\n{vade.weights_[k]:.0%}", rotation=0,
                                labelpad=18, fontsize=8, va="center")
    fig.suptitle("Digits generated by VaDE, one row per cluster (pi)")
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    print(f"generated samples per cluster drawn in {path}")


# --------------------------------------------------------------------- parser
def _choices(name):
    """The string values the estimator accepts for its parameter ``name`` (from its
    parameter constraints, so that the command line never disagrees), sorted."""
    (options,) = [constraint.options for constraint
                  in VaDEClustering._parameter_constraints[name]
                  if isinstance(constraint, StrOptions)]
    return sorted(options)


def _add_data_options(parser):
    parser.add_argument("data", metavar="DATA",
                        help="CSV (a header row is detected), .npy or .npz file; rows "
                        "are samples, columns features")
    parser.add_argument("--delimiter", type=_delimiter, default=",",
                        help="CSV field delimiter: one character, or tab (default: "
                        "',')")
    parser.add_argument("--npz-key", default=None,
                        help="array to read from a .npz (default: 'X', or its only "
                        "array)")


# Figures from benchmarks/results/ablation.md (default recipe, digits seeds 0-4:
# 2.5-3.3 minutes for pretraining, start and joint phase; 2 threads, 2026-12-01).
FIT_SIZE_HINT = (
    "Size and time: the default network (500,500,2000) is the paper's, sized for "
    "images; it fits scikit-learn's digits (1,797 rows x 64 features) in about "
    "three minutes on 2 CPU threads, and the time grows with the number of rows. "
    "For tabular data with tens of features, start with a smaller, faster network, "
    "e.g. --hidden-layer-sizes 64,64 with a --latent-dim well below the number of "
    "features.")


def _torch_version():
    import torch

    return torch.__version__


def _sklearn_version():
    import sklearn

    return sklearn.__version__


def build_parser():
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Cluster tabular data with VaDE (Variational Deep Embedding).")
    parser.add_argument("--version", action="version",
                        version=f"{PROG} {__version__} (torch {_torch_version()}, "
                        f"scikit-learn {_sklearn_version()})")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    fit = sub.add_parser("fit", help="fit VaDE on a data file and write its labels",
                         description="Fit VaDEClustering on DATA and write one cluster "
                         "label per row. Options mirror the estimator's parameters.",
                         epilog=FIT_SIZE_HINT)
    _add_data_options(fit)
    fit.add_argument("--n-clusters", "-k", type=int, required=True,
                     help="number of clusters")
    fit.add_argument("--output", "-o", required=True,
                     help="CSV to write the labels to (header 'cluster', one row per "
                     "input row)")
    fit.add_argument("--proba", default=None,
                     help="also write the cluster probabilities (gamma) to this CSV")
    fit.add_argument("--save-model", default=None,
                     help="save the fitted model: .skops (safe to load, needs skops) "
                     "or any other name for a pickle")
    defaults = VaDEClustering().get_params()
    fit.add_argument("--latent-dim", type=int, default=defaults["latent_dim"],
                     help="dimension of the latent space (default: %(default)s)")
    fit.add_argument("--hidden-layer-sizes", type=_hidden_layer_sizes,
                     default=defaults["hidden_layer_sizes"],
                     help="encoder widths, comma-separated; 'none' for no hidden "
                     "layer (a linear network) (default: 500,500,2000)")
    fit.add_argument("--likelihood", choices=_choices("likelihood"),
                     default=defaults["likelihood"],
                     help="p(x|z): bernoulli for data in [0, 1], gaussian for "
                     "real values (default: auto)")
    fit.add_argument("--pi-update", default=defaults["pi_update"],
                     choices=_choices("pi_update"),
                     help="how the mixture weights are learnt (default: em)")
    fit.add_argument("--init-params", default=defaults["init_params"],
                     choices=_choices("init_params"),
                     help="start of the mixture: umap (a manifold clustering of the "
                     "codes: the mixture's partition of their UMAP embedding, or "
                     "the merged over-clustering where its clusters are clearly "
                     "better separated), umap-mixture or umap-merge (one of the "
                     "two alone), or gmm (the paper's Gaussian mixture on the "
                     "codes) (default: %(default)s)")
    fit.add_argument("--pretrain-epochs", type=_int_or_auto,
                     default=defaults["pretrain_epochs"],
                     help="autoencoder pretraining epochs, or auto (default: auto)")
    fit.add_argument("--max-epochs", type=_int_or_auto, default=defaults["max_epochs"],
                     help="joint training epochs at most, or auto (default: auto)")
    fit.add_argument("--batch-size", type=int, default=defaults["batch_size"],
                     help="minibatch size (default: %(default)s)")
    fit.add_argument("--learning-rate", type=float, default=defaults["learning_rate"],
                     help="Adam step size of the joint phase (default: %(default)s)")
    fit.add_argument("--reconstruction-weight", type=float,
                     default=defaults["reconstruction_weight"],
                     help="weight of the reconstruction term in training "
                     "(default: %(default)s)")
    fit.add_argument("--n-init", type=int, default=defaults["n_init"],
                     help="complete fits from different seeds; the best ELBO is kept "
                     "(default: %(default)s)")
    fit.add_argument("--tol", type=float, default=defaults["tol"],
                     help="stop when fewer than this fraction of rows change cluster "
                     "in an epoch (default: %(default)s)")
    fit.add_argument("--device", choices=_choices("device"),
                     default=defaults["device"],
                     help="where to train (default: auto, CUDA when available)")
    fit.add_argument("--precision", choices=_choices("precision"),
                     default=defaults["precision"],
                     help="arithmetic of training; bfloat16 is faster where the "
                     "hardware has it natively, auto picks it there "
                     "(default: %(default)s)")
    _add_inference_precision(fit, defaults)
    fit.add_argument("--random-state", type=int, default=None,
                     help="seed for reproducible results (default: none)")
    fit.add_argument("--memory", metavar="DIR", default=None,
                     help="folder caching the pretrained autoencoder: a later fit "
                     "of the same data, network, pretraining and seed (e.g. with "
                     "another --n-clusters) loads it instead of pretraining "
                     "(default: no cache)")
    _add_verbose(fit)
    fit.set_defaults(func=cmd_fit)

    predict = sub.add_parser("predict", help="label a data file with a saved model",
                             description="Load a model saved by 'fit --save-model' "
                             "and write one cluster label per row of DATA.")
    predict.add_argument("model", metavar="MODEL",
                         help="model file (.skops, or a pickle you trust)")
    _add_data_options(predict)
    predict.add_argument("--output", "-o", required=True,
                         help="CSV to write the labels to")
    predict.add_argument("--proba", default=None,
                         help="also write the cluster probabilities to this CSV")
    _add_inference_precision(predict, defaults)
    predict.set_defaults(func=cmd_predict)

    demo = sub.add_parser("demo", help="VaDE beside k-means on scikit-learn's digits",
                          description="Fit VaDE (defaults) and k-means on "
                          "scikit-learn's bundled digits, print accuracy, NMI and ARI "
                          "against the known labels, and draw generated digits per "
                          "cluster.")
    demo.add_argument("--seed", type=int, default=0,
                      help="random_state of both models (default: 0)")
    demo.add_argument("--figure", default="vade_digits_samples.png",
                      help="where to draw the generated samples ('' for no figure; "
                      "default: %(default)s)")
    _add_verbose(demo)
    demo.set_defaults(func=cmd_demo)
    return parser


def _add_inference_precision(parser, defaults):
    parser.add_argument("--inference-precision",
                        choices=_choices("inference_precision"),
                        default=defaults["inference_precision"],
                        help="arithmetic of inference (predict's labels, the "
                        "probabilities of --proba; fit's labels are always float64's)"
                        ": float32 is about twice as fast (default: %(default)s)")


def _add_verbose(parser):
    parser.add_argument("--verbose", "-v", type=int, choices=[0, 1, 2], default=None,
                        help="0 silent, 1 progress bars, 2 also a line per epoch "
                        "(default: 1 on a terminal, else 0)")


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"{PROG}: warning: {message}", file=sys.stderr)


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            args.func(args)
    except CLIError as exc:
        parser.exit(EXIT_USER_ERROR, f"{PROG}: error: {exc}\n")
    except (ValueError, TypeError, OSError, FloatingPointError) as exc:
        parser.exit(EXIT_USER_ERROR, f"{PROG}: error: {_first_line(exc)}\n")
    except KeyboardInterrupt:
        parser.exit(130, f"{PROG}: interrupted\n")
    return 0
