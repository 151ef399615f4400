"""The code a newcomer copies from the README and the documentation runs as written.

Every ``.. code-block:: python`` of README.rst and docs/*.rst, and the README's
command-line example, is run here, with one change: the estimator's defaults are
swapped for a tiny network and a few epochs (these tests are about the code being
valid, not about its accuracy, which benchmarks/ measures).
"""

import importlib.util
import inspect
import os
import re
import shlex
import shutil
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from sklearn_vade import VaDEClustering, _cli

ROOT = Path(__file__).resolve().parents[1]
TINY = {"hidden_layer_sizes": (16,), "pretrain_epochs": 2, "max_epochs": 2,
        "init_params": "gmm"}


def python_blocks(path):
    """The bodies of the ``.. code-block:: python`` directives of an rst file."""
    lines = path.read_text().splitlines()
    blocks = []
    for i, line in enumerate(lines):
        match = re.match(r"^(\s*)\.\. code-block:: python\s*$", line)
        if not match:
            continue
        indent = len(match.group(1))
        body = []
        for following in lines[i + 1:]:
            if following.strip() and len(following) - len(following.lstrip()) <= indent:
                break
            body.append(following)
        blocks.append(textwrap.dedent("\n".join(body)))
    return blocks


def section(path, title):
    """The text of an rst file's section (from its title to the next title)."""
    text = path.read_text()
    start = text.index(f"\n{title}\n{'-' * len(title)}\n")
    after = re.search(r"\n[^\n]+\n-{3,}\n", text[start + len(title) + 2:])
    return text[start:start + len(title) + 2 + after.start()] if after else text[start:]


def literal_commands(text, program="sklearn-vade"):
    """The command lines of ``text`` that start with ``program``, backslash
    continuations joined."""
    text = re.sub(r"\\\n\s*", " ", text)
    return [shlex.split(line.strip(), comments=True)[1:]
            for line in text.splitlines() if line.strip().startswith(program + " ")]


@pytest.fixture
def tiny_defaults(monkeypatch):
    """VaDEClustering's defaults replaced by TINY for the duration of a test."""
    init = VaDEClustering.__init__
    assert set(TINY) <= set(init.__kwdefaults__)  # keyword-only parameters
    monkeypatch.setattr(init, "__kwdefaults__", {**init.__kwdefaults__, **TINY})
    assert VaDEClustering().get_params()["hidden_layer_sizes"] == (16,)
    assert str(inspect.signature(init).parameters["max_epochs"]) == "max_epochs=2"


def run_blocks(blocks, namespace):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for block in blocks:
            exec(compile(block, "<doc block>", "exec"), namespace)
    return namespace


def test_the_blocks_are_found():
    """The extraction sees the blocks that the tests below run."""
    assert len(python_blocks(ROOT / "README.rst")) == 1
    assert len(python_blocks(ROOT / "docs" / "user_guide.rst")) >= 3
    # the scaling page's blocks are each dask's, Spark's or torch.distributed's
    dask, spark = scaling_blocks("dask"), scaling_blocks("pyspark")
    distributed = scaling_blocks("torch.distributed")
    assert len(dask) >= 1 and len(spark) == 1 and len(distributed) == 2
    assert len(dask) + len(spark) + len(distributed) == len(
        python_blocks(ROOT / "docs" / "scaling.rst"))
    commands = literal_commands(section(ROOT / "README.rst", "Command line"))
    assert ["fit", "data.csv", "--n-clusters", "5"] == commands[0][:4]
    assert "--save-model" in commands[0]
    assert [c[0] for c in commands] == ["fit", "predict", "fit"]


def test_readme_and_quickstart_python(tiny_defaults):
    """The README's quick start, then the quick start page's block that continues
    it, and the front page's example."""
    namespace = run_blocks(python_blocks(ROOT / "README.rst")
                           + python_blocks(ROOT / "docs" / "quickstart.rst"), {})
    assert namespace["gamma"].shape == (1797, 10)
    assert namespace["X_new"].shape == (16, 64)
    run_blocks(python_blocks(ROOT / "docs" / "index.rst"), {})


def run_page_on_fitted_model(page, X, n_clusters, blocks=None):
    """A page's blocks (or the ``blocks`` given), in order, on the data and fitted
    model that its prose has just introduced (``X``, ``vade``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        vade = VaDEClustering(n_clusters=n_clusters, random_state=0).fit(X)
    if blocks is None:
        blocks = python_blocks(ROOT / "docs" / page)
    return run_blocks(blocks, {"X": X, "vade": vade})


def test_user_guide_python(tiny_defaults, small_digits, tmp_path, monkeypatch):
    """The user guide's blocks (select_n_clusters, GridSearchCV, skops)."""
    pytest.importorskip("skops")
    monkeypatch.chdir(tmp_path)  # the skops example writes vade.skops
    namespace = run_page_on_fitted_model("user_guide.rst", small_digits[0], 10)
    assert namespace["result"].best_n_clusters in (5, 10, 15, 20)
    assert isinstance(namespace["vade"], VaDEClustering)


def scaling_blocks(engine):
    """The scaling page's blocks that use ``engine`` ("dask", "pyspark" or
    "torch.distributed")."""
    return [block for block in python_blocks(ROOT / "docs" / "scaling.rst")
            if f"import {engine}" in block or f"from {engine}" in block]


def test_scaling_page_python(tiny_defaults, small_digits):
    """The dask example of the scaling page."""
    pytest.importorskip("dask.array")
    namespace = run_page_on_fitted_model("scaling.rst", small_digits[0], 4,
                                         scaling_blocks("dask"))
    np.testing.assert_array_equal(namespace["labels"],
                                  namespace["vade"].predict(small_digits[0]))


def test_scaling_page_spark(tiny_defaults, small_digits, tmp_path, monkeypatch):
    """The Spark example of the scaling page: a pandas UDF on a local Spark gives
    the labels of predict."""
    pytest.importorskip("pyspark")
    pytest.importorskip("pyarrow")
    pytest.importorskip("skops")
    if shutil.which("java") is None and "JAVA_HOME" not in os.environ:
        pytest.skip("Spark needs Java")
    monkeypatch.chdir(tmp_path)  # the example writes vade.skops
    # Spark's Python workers: this interpreter (else the first python3 on PATH)
    monkeypatch.setenv("PYSPARK_PYTHON", sys.executable)
    monkeypatch.setenv("PYSPARK_DRIVER_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    try:
        namespace = run_page_on_fitted_model("scaling.rst", small_digits[0], 4,
                                             scaling_blocks("pyspark"))
        np.testing.assert_array_equal(namespace["spark_labels"],
                                      namespace["vade"].predict(small_digits[0]))
    finally:
        session = SparkSession.getActiveSession()
        if session is not None:
            session.stop()


def test_every_documented_python_block_is_run():
    """The pages whose python blocks the tests above run are all that have any."""
    run = {"README.rst", "quickstart.rst", "index.rst", "user_guide.rst",
           "scaling.rst"}
    with_blocks = {p.name for p in [ROOT / "README.rst", *(ROOT / "docs").glob("*.rst")]
                   if python_blocks(p)}
    assert with_blocks == run


def test_readme_command_line(tiny_defaults, small_digits, tmp_path, monkeypatch,
                             capsys):
    """The README's command-line example, on a data.csv and a new.csv."""
    pytest.importorskip("skops")
    monkeypatch.chdir(tmp_path)
    X = small_digits[0]
    np.savetxt("data.csv", X[:200], delimiter=",", fmt="%.6g")
    np.savetxt("new.csv", X[200:], delimiter=",", fmt="%.6g")
    for argv in literal_commands(section(ROOT / "README.rst", "Command line")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            try:
                status = _cli.main(argv)
            except SystemExit as exc:  # --help
                status = exc.code
        assert not status, (argv, capsys.readouterr().err)
    labels = np.loadtxt("new_labels.csv", skiprows=1)
    assert labels.shape == (100,) and set(labels) <= set(range(5))
    assert np.loadtxt("proba.csv", delimiter=",", skiprows=1).shape == (200, 5)


def _benchmark_module(name):
    """benchmarks/NAME.py as a module (the folder on sys.path while it loads, for
    its `from _common import`)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        spec = importlib.util.spec_from_file_location(
            f"benchmarks_{name}", ROOT / "benchmarks" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return module


def _summary_module():
    return _benchmark_module("summary")


def test_should_i_use_table_is_the_results_summary():
    """The README's "Should I use VaDE?" table, and the copy that the benchmarks
    page includes, are what benchmarks/summary.py computes from the results."""
    table = _summary_module().summary()
    readme = (ROOT / "README.rst").read_text()
    quoted = readme[readme.index(".. should-i-use-start"):
                    readme.index(".. should-i-use-end")]
    assert "\n" + table in quoted
    assert (ROOT / "benchmarks" / "results" / "summary.rst").read_text() == table


def test_summary_counts_wins_on_shared_seeds():
    """The summary compares VaDE and k-means seed by seed, on the seeds both ran."""
    summary = _summary_module()
    ablation = [{"dataset": "digits", "seed": s, "variant": summary.DEFAULT_VARIANT,
                 "final_acc": acc, "n_empty": e, "pretrain_seconds": 60.0,
                 "init_seconds": i, "train_seconds": 100.0}
                for s, acc, e, i in [(0, 0.9, 0, 20.0), (1, 0.7, 1, None),
                                     (2, 0.8, 0, 40.0), (3, 0.99, 0, 1.0)]]
    ablation.append({**ablation[0], "variant": "other", "final_acc": 0.1})
    kmeans = [{"dataset": "digits", "seed": s, "method": "KMeans", "acc": acc,
               "fit_seconds": 0.2} for s, acc in [(0, 0.8), (1, 0.8), (2, 0.8)]]
    (row,) = summary.rows(ablation, kmeans)
    assert row == ("digits (1,797 x 64)", "ablation", "3", "0.800 (0.700-0.900)",
                   "0.800", "1 of 3", "", "1", "3 min", "< 1 s")
    # the one-cluster floor in its column
    floor = [{"dataset": "digits", "seed": 0, "method": "one-cluster", "acc": 0.102,
              "fit_seconds": 0.0}]
    assert summary.rows(ablation, kmeans + floor)[0][6] == "0.102"


def test_summary_prefers_fits_of_the_defaults():
    """Where full fits of the defaults exist for a data set, its row is theirs,
    all from the first results file that has the data set; only
    ``init_params="umap"`` counts; a fit that loaded its pretraining gets the
    ablation's pretraining seconds of its seed added (no ablation record: no
    time)."""
    summary = _summary_module()
    ablation = [{"dataset": name, "seed": s, "variant": summary.DEFAULT_VARIANT,
                 "final_acc": 0.5, "n_empty": 3, "pretrain_seconds": 50.0,
                 "init_seconds": 5.0, "train_seconds": 30.0}
                for name in ("digits", "usps") for s in (0, 1, 2)]
    kmeans = [{"dataset": name, "seed": s, "method": "KMeans", "acc": 0.8,
               "fit_seconds": 0.2} for name in ("digits", "usps") for s in range(4)]

    def fit(seed, acc, fit_s, pretrain_s=None, init_params="umap", data="digits",
            **extra):
        record = {"dataset": data, "seed": seed, "init_params": init_params,
                  "acc": acc, "fit_s": fit_s, "smallest": 10, **extra}
        return record if pretrain_s is None else {**record, "pretrain_s": pretrain_s}

    newer = [fit(0, 0.90, 80.0, pretrain_s=45.0, n_empty=0),
             fit(1, 0.70, 90.0, pretrain_s=45.0, n_empty=2),
             fit(2, 0.10, 80.0, pretrain_s=45.0, init_params="umap-merge")]
    older = [fit(2, 0.20, 10.0), fit(3, 0.99, 10.0),
             fit(0, 0.85, 30.0, data="usps"), fit(3, 0.95, 40.0, data="usps",
                                                   smallest=0)]
    usps, digits = summary.rows(ablation, kmeans, [newer, older])  # table order
    # the digits from the newer file only (its umap-merge record ignored, the
    # older file's seeds not mixed in), pretrained in the fit: 80 and 90 s
    assert digits == ("digits (1,797 x 64)", "fit", "2", "0.800 (0.700-0.900)",
                      "0.800", "1 of 2", "", "2", "85 s", "< 1 s")
    # USPS from the older file: seed 0 loaded its pretraining (30 + 50 s), seed 3
    # has no ablation record (no time) and a smallest cluster of 0 rows
    assert usps == ("USPS (9,298 x 256)", "fit", "2", "0.900 (0.850-0.950)",
                    "0.800", "2 of 2", "", "1", "80 s", "< 1 s")
    # without fits, the rows are the ablation's
    assert summary.rows(ablation, kmeans)[0][:4] == (
        "USPS (9,298 x 256)", "ablation", "3", "0.500 (0.500-0.500)")
    # a refit that loaded its pretraining carries the seconds of the fit it
    # replaced, which pretrained (bench_init_params.carry_pretraining): 30 + 60 s
    # for seed 0, before the ablation's 50 s
    refit = fit(0, 0.85, 30.0, pretrain_s=0.01, data="usps", pretrain_s_same_seed=60.0)
    usps, _ = summary.rows(ablation, kmeans, [newer, [refit, older[-1]]])
    assert usps[-2] == "90 s"


def test_refits_carry_the_replaced_fits_pretraining():
    module = _benchmark_module("bench_init_params")
    loaded, pretrained = {"pretrain_s": 0.02}, {"pretrain_s": 61.0}
    module.carry_pretraining(loaded, [pretrained])
    assert loaded["pretrain_s_same_seed"] == 61.0
    again = {"pretrain_s": 0.03}  # a second refit: the first one's carried value
    module.carry_pretraining(again, [loaded])
    assert again["pretrain_s_same_seed"] == 61.0
    fresh = {"pretrain_s": 58.0}  # a fit that pretrained keeps its own
    module.carry_pretraining(fresh, [pretrained])
    assert "pretrain_s_same_seed" not in fresh
    nothing = {"pretrain_s": 0.02}
    module.carry_pretraining(nothing, [{"pretrain_s": 0.01}])
    assert "pretrain_s_same_seed" not in nothing


def test_scaling_page_distributed_script(small_digits, tmp_path):
    """The scaling page's data-parallel script, launched as the page says (two
    CPU processes), on the first 300 digits with TINY's defaults."""
    if not importlib.util.find_spec("torch.distributed"):
        pytest.skip("this torch build has no torch.distributed")
    import subprocess

    import joblib

    (block,) = [b for b in scaling_blocks("torch.distributed")
                if "sharded=True" not in b]
    script = tmp_path / "fit_distributed.py"
    script.write_text(
        "from sklearn_vade import VaDEClustering as _VaDE\n"
        f"_VaDE.__init__.__kwdefaults__.update({TINY!r})\n" + block)
    np.save(tmp_path / "data.npy", small_digits[0].astype(np.float32))
    (command,) = [line for line in section(ROOT / "docs" / "scaling.rst",
                                           "Several processes, GPUs or machines: "
                                           "torch.distributed").splitlines()
                  if "torchrun --standalone --nproc-per-node 2" in line]
    command = shlex.split(command.strip())
    assert command[:2] == ["OMP_NUM_THREADS=1", "torchrun"]
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", *command[2:]], cwd=tmp_path,
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    model = joblib.load(tmp_path / "model.joblib")
    assert model.predict(small_digits[0]).shape == (300,)


def test_scaling_page_sharded_script(small_digits, tmp_path):
    """The scaling page's sharded script, launched as the page launches the
    other (two CPU processes), each on its own part of the first 300 digits
    (180 and 120 rows) with TINY's defaults: every process labels its own rows,
    and the model labels the union as the processes did."""
    if not importlib.util.find_spec("torch.distributed"):
        pytest.skip("this torch build has no torch.distributed")
    import subprocess

    import joblib

    (block,) = [b for b in scaling_blocks("torch.distributed")
                if "sharded=True" in b]
    script = tmp_path / "fit_sharded.py"
    script.write_text(
        "from sklearn_vade import VaDEClustering as _VaDE\n"
        f"_VaDE.__init__.__kwdefaults__.update({TINY!r})\n" + block)
    X = small_digits[0]
    np.save(tmp_path / "part-0.npy", X[:180])
    np.save(tmp_path / "part-1.npy", X[180:])
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone",
         "--nproc-per-node", "2", str(script)], cwd=tmp_path,
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    labels = [np.load(tmp_path / f"labels-{rank}.npy") for rank in (0, 1)]
    assert [len(part) for part in labels] == [180, 120]
    model = joblib.load(tmp_path / "model.joblib")
    np.testing.assert_array_equal(model.predict(X), np.concatenate(labels))


def test_unequal_benchmark_sets_have_the_documented_shapes():
    """long_tailed and head_heavy draw the class sizes their docstrings state,
    without repeating a row, and the same rows on every call."""
    datasets = _benchmark_module("bench_datasets")
    y = np.repeat(np.arange(10), [120, 100, 130, 110, 150, 100, 140, 105, 125, 160])
    rows = datasets.long_tailed(y, 10)
    assert np.array_equal(rows, np.unique(rows))
    sizes = np.sort(np.bincount(y[rows], minlength=10))[::-1]
    # the smallest class (100 rows) sets the largest size; ratio 10 down the tail
    assert sizes[0] == 100 and sizes[-1] == 10
    assert np.allclose(sizes, 100 * 10 ** (-np.arange(10) / 9), atol=0.5)
    assert np.array_equal(rows, datasets.long_tailed(y, 10))

    rows = datasets.head_heavy(y)
    assert np.array_equal(rows, np.unique(rows))
    counts = np.bincount(y[rows], minlength=10)
    assert np.count_nonzero(counts) == 8
    shares = np.sort(counts[counts > 0])[::-1] / len(rows)
    assert shares[0] == shares[1] and 0.42 < shares[0] < 0.44
    assert np.allclose(shares[2:], np.geomspace(0.05, 0.007, 6), atol=0.003)
    # the head as large as the smallest drawn class allows
    assert counts.max() <= min(np.bincount(y)[counts > 0])
    assert np.array_equal(rows, datasets.head_heavy(y))
