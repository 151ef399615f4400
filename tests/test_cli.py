"""The command line on real files: in process through ``_cli.main`` (the parser,
the commands and the one-line errors, as a user meets them), and as a real
``python -m sklearn_vade`` subprocess where the process itself matters (exit status,
streams, the console script)."""

import argparse
import contextlib
import io
import os
import pickle
import re
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from sklearn_vade import VaDEClustering, _cli

# A small network, a short schedule and the quick start (no UMAP to compile in each
# subprocess): these tests are about the command line.
FAST = ["--hidden-layer-sizes", "32,32", "--latent-dim", "4", "--pretrain-epochs", "5",
        "--max-epochs", "5", "--init-params", "gmm", "--random-state", "0"]


def run_cli(*args, check=True, in_process=True):
    """Run ``sklearn-vade ARGS`` and return its exit status and output as a
    ``subprocess.CompletedProcess``.

    In process by default: ``_cli.main`` with stdout and stderr captured and
    ``SystemExit`` turned into the exit status, which saves a Python start and the
    imports of torch and scikit-learn (about 3 s) per call. An exception escaping
    ``main`` fails the test, as a traceback would have in a subprocess.
    ``in_process=False`` runs ``python -m sklearn_vade`` for real.
    """
    argv = [str(a) for a in args]
    if in_process:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
                warnings.catch_warnings():
            # as in a real run: pytest shows deprecation warnings that Python hides
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", PendingDeprecationWarning)
            try:
                status = _cli.main(argv)
            except SystemExit as exc:
                status = exc.code
        result = subprocess.CompletedProcess(argv, status or 0, out.getvalue(),
                                             err.getvalue())
    else:
        # one thread, as the in-process fits of the suite (conftest), so that results
        # compared with them are computed in the same order
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        result = subprocess.run([sys.executable, "-m", "sklearn_vade", *argv],
                                capture_output=True, text=True, timeout=600, env=env)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def assert_one_line_error(result, match):
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("sklearn-vade: error: ")
    assert match in lines[0], lines[0]


def read_labels(path):
    lines = path.read_text().splitlines()
    assert lines[0] == "cluster"
    return np.array([int(v) for v in lines[1:]])


@pytest.fixture(scope="module")
def digits_csv(small_digits, tmp_path_factory):
    """The first 300 digits as a CSV with a header row."""
    X = small_digits[0]
    path = tmp_path_factory.mktemp("data") / "digits.csv"
    header = ",".join(f"pixel{i}" for i in range(X.shape[1]))
    np.savetxt(path, X, delimiter=",", header=header, comments="", fmt="%.6g")
    return path


@pytest.fixture(scope="module")
def fitted_files(digits_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("fit")
    result = run_cli("fit", digits_csv, "--n-clusters", 5, "--output",
                     out / "labels.csv", "--proba", out / "proba.csv", "--save-model",
                     out / "model.pkl", "--memory", out / "cache", *FAST,
                     in_process=False)
    return out, result


def test_fit_writes_one_label_per_row(fitted_files, small_digits):
    out, result = fitted_files
    labels = read_labels(out / "labels.csv")
    assert labels.shape == (len(small_digits[0]),)
    assert labels.min() >= 0 and labels.max() < 5
    proba = np.loadtxt(out / "proba.csv", delimiter=",", skiprows=1)
    assert proba.shape == (len(labels), 5)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-8)
    np.testing.assert_array_equal(proba.argmax(axis=1), labels)
    assert "fitted 300 rows x 64 features into 5 clusters" in result.stdout
    assert "Traceback" not in result.stderr


def test_cli_fit_equals_the_estimator(fitted_files, small_digits):
    """The command line fits what VaDEClustering with the same parameters fits."""
    out, _ = fitted_files
    with open(out / "model.pkl", "rb") as f:
        model = pickle.load(f)
    assert model.get_params()["hidden_layer_sizes"] == (32, 32)
    assert model.get_params()["init_params"] == "gmm"
    # --memory stored the pretraining (the fit without a cache gives the same labels)
    assert model.get_params()["memory"] == str(out / "cache")
    assert len(list((out / "cache").rglob("output.pkl"))) == 1
    est = VaDEClustering(n_clusters=5, hidden_layer_sizes=(32, 32), latent_dim=4,
                         pretrain_epochs=5, max_epochs=5, init_params="gmm",
                         random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(small_digits[0])  # multiples of 1/16: exact in the CSV
    np.testing.assert_array_equal(read_labels(out / "labels.csv"), est.labels_)


def test_predict_with_saved_pickle_gives_the_fit_labels(fitted_files, digits_csv,
                                                        tmp_path):
    out, _ = fitted_files
    run_cli("predict", out / "model.pkl", digits_csv, "--output",
            tmp_path / "again.csv", "--proba", tmp_path / "proba.csv")
    np.testing.assert_array_equal(read_labels(tmp_path / "again.csv"),
                                  read_labels(out / "labels.csv"))


def test_predict_in_float32_writes_the_float64_labels(fitted_files, digits_csv,
                                                     tmp_path):
    """--inference-precision float32: the same labels, probabilities within 1e-4."""
    out, _ = fitted_files
    for precision in ("float64", "float32"):
        run_cli("predict", out / "model.pkl", digits_csv, "--output",
                tmp_path / f"{precision}.csv", "--proba",
                tmp_path / f"proba-{precision}.csv", "--inference-precision",
                precision)
    np.testing.assert_array_equal(read_labels(tmp_path / "float32.csv"),
                                  read_labels(out / "labels.csv"))
    proba = [np.loadtxt(tmp_path / f"proba-{p}.csv", delimiter=",", skiprows=1)
             for p in ("float64", "float32")]
    np.testing.assert_allclose(proba[1], proba[0], atol=1e-4)


def test_skops_model_round_trip(digits_csv, tmp_path):
    pytest.importorskip("skops")
    run_cli("fit", digits_csv, "-k", 3, "-o", tmp_path / "labels.csv", "--save-model",
            tmp_path / "model.skops", *FAST)
    run_cli("predict", tmp_path / "model.skops", digits_csv, "-o",
            tmp_path / "again.csv")
    np.testing.assert_array_equal(read_labels(tmp_path / "again.csv"),
                                  read_labels(tmp_path / "labels.csv"))


@pytest.mark.parametrize("fmt", ["csv_no_header", "npy", "npz", "npz_single_key",
                                 "tsv"])
def test_other_input_formats(fmt, small_digits, tmp_path):
    X = small_digits[0][:120]
    extra = []
    if fmt == "csv_no_header":
        path = tmp_path / "x.csv"
        np.savetxt(path, X, delimiter=",")
    elif fmt == "tsv":
        path = tmp_path / "x.tsv"
        np.savetxt(path, X, delimiter="\t")
        extra = ["--delimiter", "\t"]
    elif fmt == "npy":
        path = tmp_path / "x.npy"
        np.save(path, X)
    elif fmt == "npz":
        path = tmp_path / "x.npz"
        np.savez(path, X=X, y=small_digits[1][:120])
    else:
        path = tmp_path / "x.npz"
        np.savez(path, pixels=X)
    run_cli("fit", path, "-k", 3, "-o", tmp_path / "labels.csv", *FAST, *extra)
    assert read_labels(tmp_path / "labels.csv").shape == (120,)


def _write(path, text):
    path.write_text(text)
    return path


@pytest.mark.parametrize("content, match", [
    ("a,b\n1,2\n3,oops\n5,6\n", "line 3, column 2: 'oops' is not a number"),
    ("1,2,3\n4,5\n6,7,8\n", "line 2 has 2 fields, expected 3"),
    ("a,b\n1,2\n3,nan\n5,6\n", "non-finite value (nan) at data row 2, column 2"),
    ("1,2\n3,\n5,6\n", "line 2, column 2 is empty: missing values"),
    ("1,,2\n3,4,5\n", "line 1, column 2 is empty: missing values"),
    ("", "is empty"),
    ("a,b\n", "holds no rows"),
])
def test_bad_csv_gives_one_line_error(content, match, tmp_path):
    path = _write(tmp_path / "bad.csv", content)
    result = run_cli("fit", path, "-k", 2, "-o", tmp_path / "l.csv", *FAST,
                     check=False)
    assert_one_line_error(result, match)
    assert not (tmp_path / "l.csv").exists()


def test_missing_and_unreadable_files(tmp_path, small_digits):
    # as a real process: exit status 2, one line on stderr, no traceback
    result = run_cli("fit", tmp_path / "nope.csv", "-k", 2, "-o", tmp_path / "l.csv",
                     check=False, in_process=False)
    assert_one_line_error(result, "does not exist")
    np.savez(tmp_path / "two.npz", a=np.ones((5, 2)), b=np.ones((5, 2)))
    result = run_cli("fit", tmp_path / "two.npz", "-k", 2, "-o", tmp_path / "l.csv",
                     check=False)
    assert_one_line_error(result, "choose one with --npz-key")
    _write(tmp_path / "junk.npy", "not numpy")
    result = run_cli("fit", tmp_path / "junk.npy", "-k", 2, "-o", tmp_path / "l.csv",
                     check=False)
    assert_one_line_error(result, "cannot read")
    result = run_cli("predict", tmp_path / "junk.npy", tmp_path / "junk.npy", "-o",
                     tmp_path / "l.csv", check=False)
    assert_one_line_error(result, "cannot read model")


def test_unwritable_outputs_are_refused_before_any_work(tmp_path):
    """An output in a missing folder is refused first: even before the data is read
    (here the data file does not exist either), so never after a long fit."""
    missing = tmp_path / "no_such_folder" / "out.csv"
    for option in ("-o", "--proba", "--save-model"):
        outputs = {"-o": tmp_path / "l.csv", option: missing}
        args = [str(a) for pair in outputs.items() for a in pair]
        result = run_cli("fit", tmp_path / "nope.csv", "-k", 3, *args, check=False)
        assert_one_line_error(result, "its folder does not exist")
    result = run_cli("predict", tmp_path / "nope.pkl", tmp_path / "nope.csv", "-o",
                     missing, check=False)
    assert_one_line_error(result, "its folder does not exist")
    assert not (tmp_path / "l.csv").exists()


def test_estimator_errors_are_one_line(tmp_path):
    path = tmp_path / "few.csv"
    np.savetxt(path, np.random.RandomState(0).rand(3, 2), delimiter=",")
    result = run_cli("fit", path, "-k", 5, "-o", tmp_path / "l.csv", check=False)
    assert_one_line_error(result, "n_samples=3 should be >= n_clusters=5")


def test_parameter_errors_name_the_flag(tmp_path):
    """Bad option values are refused before the data is read (here it does not
    exist), naming the flag the user typed, not the estimator's parameter."""
    missing = tmp_path / "nope.csv"
    result = run_cli("fit", missing, "-k", 2, "--learning-rate", "-1", "-o",
                     tmp_path / "l.csv", check=False)
    assert_one_line_error(result, "sklearn-vade: error: argument --learning-rate: "
                          "expected a number in the range (0.0, inf), got -1.0")
    result = run_cli("fit", missing, "-k", 2, "--max-epochs", "-1", "-o",
                     tmp_path / "l.csv", check=False)
    assert_one_line_error(result, "sklearn-vade: error: argument --max-epochs: "
                          "expected an integer in the range [0, inf) or 'auto', got -1")
    assert "max_epochs" not in result.stderr


def test_predict_refuses_an_unfitted_or_foreign_model(tmp_path):
    data = _write(tmp_path / "x.csv", "1,2\n3,4\n")
    with open(tmp_path / "unfitted.pkl", "wb") as f:
        pickle.dump(VaDEClustering(n_clusters=2), f)
    result = run_cli("predict", tmp_path / "unfitted.pkl", data, "-o",
                     tmp_path / "l.csv", check=False)
    assert_one_line_error(
        result, "unfitted.pkl' holds a VaDEClustering model that was never fitted; "
        "save a fitted one with 'sklearn-vade fit DATA -k K -o labels.csv "
        "--save-model FILE'")
    with open(tmp_path / "dict.pkl", "wb") as f:
        pickle.dump({"weights": [0.5, 0.5]}, f)
    result = run_cli("predict", tmp_path / "dict.pkl", data, "-o",
                     tmp_path / "l.csv", check=False)
    assert_one_line_error(result, "dict.pkl' does not hold a VaDEClustering model "
                          "(found dict)")
    assert not (tmp_path / "l.csv").exists()


def test_predict_with_wrong_number_of_features(fitted_files, tmp_path):
    out, _ = fitted_files
    path = tmp_path / "narrow.csv"
    np.savetxt(path, np.random.RandomState(0).rand(4, 3), delimiter=",")
    result = run_cli("predict", out / "model.pkl", path, "-o", tmp_path / "l.csv",
                     check=False)
    assert_one_line_error(result, "has 3 features but the model was fitted on 64")


def test_help_documents_every_estimator_parameter():
    help_text = run_cli("fit", "--help").stdout
    for name in VaDEClustering().get_params():
        if name in ("verbose", "warm_start"):  # --verbose has its own default;
            continue  # a command-line fit always starts from scratch
        assert "--" + name.replace("_", "-") in help_text, name
    for option in ("--output", "--proba", "--save-model", "--verbose", "--delimiter"):
        assert option in help_text
    assert "--output" in run_cli("predict", "--help").stdout
    assert "--figure" in run_cli("demo", "--help").stdout
    assert all(cmd in run_cli("--help").stdout for cmd in ("fit", "predict", "demo"))


def test_version():
    import sklearn
    import torch

    import sklearn_vade

    result = run_cli("--version")
    assert " ".join(result.stdout.split()) == (
        f"sklearn-vade {sklearn_vade.__version__} (torch {torch.__version__}, "
        f"scikit-learn {sklearn.__version__})")


def test_fit_help_gives_a_size_hint():
    help_text = " ".join(run_cli("fit", "--help").stdout.split())  # unwrapped
    assert ("Size and time: the default network (500,500,2000) is the paper's, sized "
            "for images; it fits scikit-learn's digits (1,797 rows x 64 features) in "
            "about three minutes on 2 CPU threads") in help_text
    assert ("For tabular data with tens of features, start with a smaller, faster "
            "network, e.g. --hidden-layer-sizes 64,64") in help_text


def test_empty_hidden_layer_sizes_is_refused_unless_named(tmp_path):
    data = _write(tmp_path / "x.csv", "1,2\n3,4\n")
    for sizes in ("", ","):
        result = run_cli("fit", data, "-k", 2, "-o", tmp_path / "l.csv",
                         "--hidden-layer-sizes", sizes, check=False)
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert result.stderr.strip().splitlines()[-1] == (
            "sklearn-vade fit: error: argument --hidden-layer-sizes: expected at "
            f"least one layer width, e.g. 64,64 (or 'none' for a linear network); "
            f"got {sizes!r}")
    assert not (tmp_path / "l.csv").exists()
    # asked for by name, no hidden layer is the estimator's linear network
    assert _cli._hidden_layer_sizes("none") == ()
    assert _cli._hidden_layer_sizes(" None ") == ()


def _tiny_demo_model(monkeypatch):
    """The demo with a tiny network in place of the default, on the suite's thread
    count."""
    import torch

    def tiny_vade(**params):
        return VaDEClustering(**params, hidden_layer_sizes=(8,), latent_dim=2,
                              pretrain_epochs=1, max_epochs=1, init_params="gmm")

    monkeypatch.setattr(_cli, "VaDEClustering", tiny_vade)
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)


def test_demo_ends_with_what_to_try_next(monkeypatch, capsys):
    """The demo, with a tiny network in place of the default, prints the next step
    last."""
    _tiny_demo_model(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        _cli.cmd_demo(argparse.Namespace(seed=0, figure="", verbose=0))
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-2].startswith("KMeans")
    assert lines[-1] == ("next: cluster your own data with 'sklearn-vade fit your.csv "
                         "-k K -o labels.csv' ('sklearn-vade fit --help' for the "
                         "options and a size hint)")


def test_console_script_is_installed():
    script = shutil.which("sklearn-vade")
    if script is None:
        pytest.skip("the package is not installed with its console script")
    result = subprocess.run([script, "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "fit" in result.stdout


def test_read_data_detects_header(tmp_path):
    path = _write(tmp_path / "h.csv", "x,y\n1,2\n3,4\n")
    np.testing.assert_array_equal(_cli.read_data(path), [[1, 2], [3, 4]])
    # a byte-order mark (Excel's UTF-8 CSV) is neither a header nor part of a number
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf1,2\n3,4\n")
    np.testing.assert_array_equal(_cli.read_data(path), [[1, 2], [3, 4]])
    path.write_bytes(b"\xef\xbb\xbfx,y\n1,2\n")
    np.testing.assert_array_equal(_cli.read_data(path), [[1, 2]])
    path = _write(tmp_path / "n.csv", "1e-3,2\n-3,4.5\n")
    np.testing.assert_array_equal(_cli.read_data(path), [[1e-3, 2], [-3, 4.5]])


@pytest.mark.parametrize("content, delimiter, message", [
    ("1;2\n3;4\n", ",", "line 1 looks ';'-separated, not ','-separated: pass "
     "--delimiter ';'"),
    ("x;y\n1;2\n3;4\n", ",", "line 2 looks ';'-separated, not ','-separated: pass "
     "--delimiter ';'"),
    ("1\t2\n3\t4\n", ",", "line 1 looks tab-separated, not ','-separated: pass "
     "--delimiter tab"),
    ("x\ty\n1\t2\n", ";", "line 2 looks tab-separated, not ';'-separated: pass "
     "--delimiter tab"),
    ("1,5;2,5\n3,5;4,5\n", ",", "line 1 looks ';'-separated"),
])
def test_read_data_suggests_the_delimiter(content, delimiter, message, tmp_path):
    """A file separated by another delimiter is refused with the --delimiter to
    pass, never read with its first row silently taken as a header."""
    path = _write(tmp_path / "d.csv", content)
    with pytest.raises(_cli.CLIError, match=re.escape(f"'{path}' {message}")):
        _cli.read_data(path, delimiter)


def test_read_data_with_the_suggested_delimiter(tmp_path):
    path = _write(tmp_path / "d.csv", "x;y\n1;2\n3;4\n")
    np.testing.assert_array_equal(_cli.read_data(path, ";"), [[1, 2], [3, 4]])
    # one column whose header holds a ';' but no number is a header, as before
    path = _write(tmp_path / "one.csv", "weight;kg\n3.5\n4\n")
    np.testing.assert_array_equal(_cli.read_data(path), [[3.5], [4]])


def test_fit_suggests_the_delimiter(tmp_path):
    path = _write(tmp_path / "semi.csv", "1;2\n3;4\n5;6\n")
    result = run_cli("fit", path, "-k", 2, "-o", tmp_path / "l.csv", *FAST,
                     check=False)
    assert_one_line_error(result, "semi.csv' line 1 looks ';'-separated, not "
                          "','-separated: pass --delimiter ';'")
    assert not (tmp_path / "l.csv").exists()


def test_delimiter_option(capsys):
    """--delimiter takes one character, or tab (also as a typed backslash-t)."""
    parser = _cli.build_parser()
    for text in ("tab", "\\t", "\t"):
        args = parser.parse_args(["fit", "x.csv", "-k", "2", "-o", "l.csv",
                                  "--delimiter", text])
        assert args.delimiter == "\t"
    assert parser.parse_args(["predict", "m.pkl", "x.csv", "-o", "l.csv",
                              "--delimiter", ";"]).delimiter == ";"
    with pytest.raises(SystemExit):
        parser.parse_args(["fit", "x.csv", "-k", "2", "-o", "l.csv", "--delimiter",
                           ";;"])
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "sklearn-vade fit: error: argument --delimiter: expected one character, or "
        "tab, got ';;'")


def test_demo_prints_scores_and_draws_samples(tmp_path, monkeypatch, capsys):
    """The demo's table and figure, with a tiny network in place of the default
    (the default fit on the digits is test_estimator's
    test_defaults_cluster_real_digits)."""
    pytest.importorskip("matplotlib")
    _tiny_demo_model(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        _cli.cmd_demo(argparse.Namespace(seed=0, figure=tmp_path / "samples.png",
                                         verbose=0))
    out = capsys.readouterr().out
    assert "VaDE" in out and "KMeans" in out
    assert (tmp_path / "samples.png").stat().st_size > 10_000


def test_fit_choices_are_the_estimators_own():
    """Every fixed-choice option of ``fit`` offers exactly the values the
    estimator's parameter constraints accept."""
    fit = next(action for action in _cli.build_parser()._actions
               if isinstance(action, argparse._SubParsersAction)).choices["fit"]
    choices = {action.dest: set(action.choices) for action in fit._actions
               if action.choices is not None and action.dest != "verbose"}
    assert choices == {
        "likelihood": {"auto", "bernoulli", "gaussian"},
        "pi_update": {"em", "renormalize", "softmax", "unconstrained", "fixed"},
        "init_params": {"umap", "umap-mixture", "umap-merge", "gmm"},
        "device": {"auto", "cpu", "cuda"},
        "precision": {"float32", "bfloat16", "auto"},
        "inference_precision": {"float64", "float32"},
    }
    for name, values in choices.items():
        for value in values:  # each is valid for the estimator
            VaDEClustering(**{name: value})._validate_params()
