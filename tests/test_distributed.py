"""Data-parallel training (sklearn_vade._distributed): two processes launched with
torchrun on the gloo backend end with the same model, which clusters as a
single-process fit with the same global batch does."""

import os
import pickle
import runpy
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.metrics import adjusted_rand_score

from sklearn_vade import VaDEClustering
from sklearn_vade._distributed import (
    ALONE,
    Replicas,
    input_differences,
    input_fingerprint,
    replicas,
)
from sklearn_vade._metrics import cluster_accuracy
from sklearn_vade._outofcore import MappedRows

WORKER = Path(__file__).with_name("_distributed_fit.py")

needs_distributed = pytest.mark.skipif(
    not torch.distributed.is_available(),
    reason="this torch build has no torch.distributed")


def _load_worker_params():
    return runpy.run_path(str(WORKER))["PARAMS"]  # not as __main__: nothing runs


def test_outside_a_process_group_the_fit_is_alone():
    assert replicas() is ALONE
    assert ALONE.alone and ALONE.is_main


def test_alone_every_operation_is_the_identity():
    values = torch.randn(7, 3)
    assert ALONE.share(7) == slice(0, 7)
    assert torch.equal(ALONE.mean_rows(values), values.mean(dim=0))
    assert ALONE.sum_(values) is values
    obj = {"a": 1}
    assert ALONE.broadcast_object(obj) is obj


# a batch with fewer rows than processes is skipped by the engine: not split
@pytest.mark.parametrize("n_rows", [3, 7, 256])
@pytest.mark.parametrize("world_size", [2, 3])
def test_shares_split_a_batch_into_contiguous_near_equal_parts(n_rows, world_size):
    shares = [Replicas(rank, world_size).share(n_rows) for rank in range(world_size)]
    assert shares[0].start == 0 and shares[-1].stop == n_rows
    assert all(a.stop == b.start for a, b in zip(shares, shares[1:]))
    sizes = [s.stop - s.start for s in shares]
    assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1


def _torchrun(tmp_path, *args, n_procs=2):
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc-per-node={n_procs}", str(WORKER), str(tmp_path), *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-12000:]
    ranks = []
    for rank in range(n_procs):
        with open(tmp_path / f"rank{rank}.pkl", "rb") as f:
            ranks.append(pickle.load(f))
    return ranks


def _assert_same_model(first, second):
    """The two processes' fitted arrays, labels and history are equal (not
    their warnings: only process 0 warns)."""
    assert first["state"].keys() == second["state"].keys()
    for key in first["state"]:
        np.testing.assert_array_equal(first["state"][key], second["state"][key])
    np.testing.assert_array_equal(first["labels"], second["labels"])
    np.testing.assert_array_equal(first["proba"], second["proba"])
    assert first["lower_bound"] == second["lower_bound"]
    assert first["history"] == second["history"]


@needs_distributed
def test_two_processes_fit_one_model_that_clusters_as_one_process_does(
        tmp_path, digits):
    X, y = digits
    rank0, rank1 = _torchrun(tmp_path)
    _assert_same_model(rank0, rank1)
    # the same global batch in one process: the same steps up to the rounding of
    # the gradients' sum over two shares
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        single = VaDEClustering(**_load_worker_params()).fit(X)
    # fit's warnings come from process 0 only, the same as in one process
    assert rank0["warnings"] == [type(w.message).__name__ for w in caught]
    assert "ConvergenceWarning" in rank0["warnings"] and rank1["warnings"] == []
    assert adjusted_rand_score(rank0["labels"], single.labels_) > 0.9
    assert abs(cluster_accuracy(y, rank0["labels"])
               - cluster_accuracy(y, single.labels_)) < 0.03
    assert cluster_accuracy(y, rank0["labels"]) > 0.6  # 0.67; one cluster: 0.10
    assert rank0["n_iter"] == single.n_iter_


@needs_distributed
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_two_processes_fit_one_model_from_a_memory_mapped_file(tmp_path, digits):
    X, _ = digits
    path = tmp_path / "digits.npy"
    np.save(path, X.astype(np.float32))
    rank0, rank1 = _torchrun(tmp_path, "--memmap", str(path), "--quick")
    _assert_same_model(rank0, rank1)


@needs_distributed
def test_bad_input_stops_every_process_with_the_single_process_error(tmp_path, digits):
    """A NaN in a memory-mapped X: every process fails at validation with the
    error of a single-process fit, naming the rows, and torchrun reports it."""
    X = digits[0].astype(np.float32)
    X[1000, 3] = np.nan
    path = tmp_path / "digits.npy"
    np.save(path, X)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc-per-node=2", str(WORKER), str(tmp_path), "--memmap", str(path),
               "--quick"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode != 0
    message = "Input X contains NaN or infinity in rows"
    assert result.stderr.count(message) >= 2  # from both processes
    assert not list(tmp_path.glob("rank*.pkl"))


def _torchrun_failing(tmp_path, *args):
    """Run the worker under torchrun where it must fail: (returncode, stderr)."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc-per-node=2", str(WORKER), str(tmp_path), *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert not list(tmp_path.glob("rank*.pkl"))
    # each process ends with its Python error, none aborts on its way out
    # (Replicas.all_gather_objects and released: gloo's tensors freed at exit)
    assert "SIGABRT" not in result.stderr, result.stderr[-6000:]
    return result.returncode, result.stderr


@needs_distributed
@pytest.mark.parametrize("misuse, what", [
    ("shard", "X's rows differ (process 0: 899, process 1: 898)"),
    ("features", "X's features differ (process 0: 64, process 1: 63)"),
    ("values", "X has the same shape but other values in process(es) 1"),
    ("n_clusters", "parameter n_clusters differs (process 0: 10, process 1: 9)"),
])
def test_processes_that_disagree_on_the_input_stop_with_one_clear_error(
        tmp_path, misuse, what):
    """Sharded rows, another feature count, other values of the same shape or other
    parameters: every process raises the same ValueError naming the difference and
    what to do, instead of a gloo abort or a hang."""
    returncode, stderr = _torchrun_failing(tmp_path, "--quick", "--misuse", misuse)
    assert returncode != 0
    assert stderr.count("ValueError: Data-parallel fit stopped in every process") >= 2
    assert stderr.count(what) >= 2, stderr[-3000:]
    assert stderr.count("If each process passes only its own rows of the data, "
                        "say so with fit(X, sharded=True)") >= 2
    assert "Received data size" not in stderr and "Connection reset" not in stderr


@needs_distributed
def test_two_processes_fit_one_model_to_their_own_rows(tmp_path, digits):
    """Sharded input: process 0 passes 1,200 digits, process 1 the other 597. Both
    end with the same model, fitted to all 1,797: labels_ of their own rows, the
    bound over all rows, the history's counts over all rows, the data's range
    and moments pooled exactly."""
    X, y = digits
    rank0, rank1 = _torchrun(tmp_path, "--sharded")
    for key in rank0["state"]:
        np.testing.assert_array_equal(rank0["state"][key], rank1["state"][key])
    assert rank0["history"] == rank1["history"]
    assert rank0["lower_bound"] == rank1["lower_bound"]
    assert len(rank0["labels"]) == 1200 and len(rank1["labels"]) == 597
    labels = np.concatenate([rank0["labels"], rank1["labels"]])
    np.testing.assert_array_equal(
        labels, np.concatenate([rank0["predicted"], rank1["predicted"]]))
    np.testing.assert_array_equal(rank0["proba"], rank1["proba"])
    # the bound over every row, as score computes it on the whole data
    np.testing.assert_allclose(rank0["lower_bound"], rank0["score"], rtol=1e-10)
    assert all(sum(h["occupancy"]) == len(X) for h in rank0["history"])
    assert cluster_accuracy(y, labels) > 0.6  # replicated input: 0.67
    (offset, scale), extremes = rank1["pooled"]
    np.testing.assert_allclose(offset, X.mean(axis=0), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(scale[X.std(axis=0) > 0], X.std(axis=0)[
        X.std(axis=0) > 0], rtol=1e-10)
    assert extremes == (X.min(), X.max())


@needs_distributed
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_sharded_memory_mapped_rows(tmp_path, digits):
    """Each process's rows a slice of one memory-mapped file: read out of core,
    fitted as one model."""
    path = tmp_path / "digits.npy"
    np.save(path, digits[0].astype(np.float32))
    rank0, rank1 = _torchrun(tmp_path, "--memmap", str(path), "--quick", "--sharded")
    for key in rank0["state"]:
        np.testing.assert_array_equal(rank0["state"][key], rank1["state"][key])
    assert len(rank0["labels"]) + len(rank1["labels"]) == len(digits[0])


@needs_distributed
@pytest.mark.parametrize("misuse, what", [
    ("small-shard", "every process needs at least one row per step of an epoch "
                    "(10 steps of batch_size=128 over 1205 rows), but the "
                    "processes hold 1200, 5 rows"),
    ("sharded-flag", "fit's sharded differs (process 0: True, process 1: False)"),
])
def test_sharded_processes_that_disagree_stop_with_one_clear_error(
        tmp_path, misuse, what):
    returncode, stderr = _torchrun_failing(tmp_path, "--quick", "--sharded",
                                           "--misuse", misuse)
    assert returncode != 0
    assert stderr.count("ValueError: Data-parallel fit stopped in every process") >= 2
    assert stderr.count(what) >= 2, stderr[-3000:]


def _parts_of_an_epoch(shard_rows, batch_size):
    """Each process's (rows of its order, part) for every step of an epoch."""
    from sklearn_vade._engine import epoch_batches

    return [list(epoch_batches(torch.arange(n), batch_size,
                               Replicas(rank, len(shard_rows), shard_rows)))
            for rank, n in enumerate(shard_rows)]


@pytest.mark.parametrize("shard_rows, batch_size", [((7, 9, 11), 4), ((600, 597), 128),
                                                    ((3, 3), 6)])
def test_sharded_epochs_take_every_row_once_in_global_batches(shard_rows, batch_size):
    by_rank = _parts_of_an_epoch(shard_rows, batch_size)
    n_steps = -(-sum(shard_rows) // batch_size)
    assert all(len(steps) == n_steps for steps in by_rank)
    for rank, steps in enumerate(by_rank):
        # every row of the process once, every step a non-empty piece
        np.testing.assert_array_equal(torch.cat([idx for idx, _ in steps]),
                                      torch.arange(shard_rows[rank]))
        assert min(len(idx) for idx, _ in steps) >= 1
    for step in range(n_steps):
        parts = [steps[step][1] for steps in by_rank]
        # the processes' parts tile one global batch, process 0's first
        assert len({part.n_batch for part in parts}) == 1
        assert parts[0].rows.start == 0 and parts[-1].rows.stop == parts[0].n_batch
        assert all(a.rows.stop == b.rows.start for a, b in zip(parts, parts[1:]))
        assert sum(part.weight for part in parts) == pytest.approx(1.0)
        assert parts[0].n_batch <= batch_size + len(shard_rows)
    assert sum(steps[0][1].n_batch for steps in zip(*by_rank)) == sum(shard_rows)


def test_replicated_epochs_split_each_batch_into_shares():
    from sklearn_vade._engine import epoch_batches

    order = torch.randperm(10)
    steps = list(epoch_batches(order, 4, Replicas(1, 2)))
    # batches of 4, 4 and 2 rows; process 1 computes the second half of each
    assert [part.n_batch for _, part in steps] == [4, 4, 2]
    np.testing.assert_array_equal(torch.cat([idx for idx, _ in steps]),
                                  order[[2, 3, 6, 7, 9]])
    alone = list(epoch_batches(order, 4))
    np.testing.assert_array_equal(torch.cat([idx for idx, _ in alone]), order)


def test_shards_too_small_for_a_step_each_are_refused():
    Replicas(0, 2, (600, 597)).check_shards(128)  # 10 steps: fine
    with pytest.raises(ValueError, match="at least one row per step"):
        Replicas(1, 2, (1790, 7)).check_shards(128)  # 15 steps


def test_sharded_reports_differ_only_in_what_matters():
    X = np.arange(12.0).reshape(4, 3)
    params = {"n_clusters": 2}
    first = input_fingerprint(X, params, sharded=True)
    # other rows, other values: the shards of one data set
    assert input_differences([first, input_fingerprint(X[:2] + 1, params,
                                                       sharded=True)]) == []
    assert input_differences([first, input_fingerprint(X[:, :2], params,
                                                       sharded=True)]) == [
        "X's features differ (process 0: 3, process 1: 2)"]
    assert "fit's sharded differs (process 0: True, process 1: False)" in (
        input_differences([first, input_fingerprint(X, params)]))


def test_the_agreement_index_of_a_contingency_table_is_sklearns():
    from sklearn_vade._training import adjusted_rand_index, contingency

    rng = np.random.RandomState(0)
    for n_labels, n_rows in [(1, 5), (3, 40), (10, 500)]:
        first = rng.randint(n_labels, size=n_rows)
        for second in (first, rng.randint(n_labels, size=n_rows)):
            table = contingency(first, second, n_labels)
            assert adjusted_rand_index(table) == adjusted_rand_score(first, second)
            # tables of two halves of the rows add up to the whole's
            half = n_rows // 2
            assert adjusted_rand_index(
                contingency(first[:half], second[:half], n_labels)
                + contingency(first[half:], second[half:], n_labels)
            ) == adjusted_rand_score(first, second)


def test_agreeing_reports_show_no_difference():
    X = np.arange(12.0).reshape(4, 3)
    params = {"n_clusters": 2, "random_state": 0, "verbose": 0}
    report = input_fingerprint(X, params)
    # random_state and verbose may differ (process 0's seed is broadcast)
    other = input_fingerprint(X.copy(), {**params, "random_state": 1, "verbose": 2})
    assert input_differences([report, other]) == []
    changed = X.copy()
    changed[3, 2] += 1e-12
    assert input_differences([report, input_fingerprint(changed, params)]) == [
        "X has the same shape but other values in process(es) 1 than in process 0"]
    assert input_differences([report, input_fingerprint(X.astype(np.float32),
                                                        params)]) == [
        "X's dtype differ (process 0: float64, process 1: float32)"]


def test_sparse_and_mapped_inputs_are_fingerprinted_by_their_values(tmp_path):
    X = np.eye(5)
    dense = input_fingerprint(X, {})
    sparse = input_fingerprint(sp.csr_matrix(X), {})
    assert sparse["rows"] == dense["rows"] and sparse["features"] == 5
    changed = sp.csr_matrix(X)
    changed.data[2] = 2.0
    assert input_fingerprint(changed, {})["values"] != sparse["values"]
    path = tmp_path / "X.npy"
    np.save(path, X)
    mapped = input_fingerprint(MappedRows(np.load(path, mmap_mode="r")), {})
    assert mapped["values"] == MappedRows(np.load(path, mmap_mode="r")).digest()
    assert (mapped["rows"], mapped["features"]) == (5, 5)


class _LocalPair(Replicas):
    """Process 0 of two whose collectives stay local (the other process adds
    nothing): for the phases' wiring, without a process group."""

    def __init__(self):
        super().__init__(rank=0, world_size=2)
        self.merges = 0

    def sum_(self, tensor):
        return tensor

    def broadcast_object(self, obj):
        return obj

    def broadcast_module_(self, module):
        pass

    def merge_labels_(self, labels, mine):
        self.merges += 1
        return labels


def _small_phase_inputs():
    from sklearn.datasets import make_blobs

    from sklearn_vade._init import initialise_mixture
    from sklearn_vade._pretrain import pretrain_autoencoder
    from sklearn_vade._progress import progress_factory
    from sklearn_vade._utils import torch_generator

    X, _ = make_blobs(n_samples=120, centers=3, n_features=4, random_state=0)
    est = VaDEClustering(n_clusters=3, hidden_layer_sizes=(8,), latent_dim=2,
                         pretrain_epochs=2, batch_size=32, init_params="gmm",
                         random_state=0)
    est._validate_params()
    prep = est._prepare(X, continuing=False)
    generator = torch_generator(0, torch.device("cpu"))
    net = prep.network(generator)
    pretrain_autoencoder(net, prep.X_train, prep.config, generator, progress_factory(0))
    start = initialise_mixture(net, prep.X_train, prep.config, np.random.RandomState(0))
    return net, prep.X_train, prep.config, generator, start


def test_a_rolled_back_epoch_merges_its_labels_across_processes():
    """After a rollback the discarded epoch's labels are merged (every process
    rolls back at the same step), so rows that no later share holds agree."""
    from sklearn_vade._training import JointPhase

    net, X, config, generator, start = _small_phase_inputs()
    pair = _LocalPair()
    phase = JointPhase(net, X, config, generator, start.labels, pair)
    phase.mine[:5] = True
    phase.rollback(0)
    assert pair.merges == 1 and not phase.mine.any()


def test_ctrl_c_propagates_in_data_parallel_training():
    """Alone, a KeyboardInterrupt ends the phase with the last epoch kept; with
    several processes it propagates, since they would not agree on its epoch."""
    from sklearn_vade._engine import make_optimizer, run_epochs
    from sklearn_vade._progress import progress_factory

    net, X, config, generator, _ = _small_phase_inputs()
    optimizer = make_optimizer(net.autoencoder_parameters(), 1e-3)

    def step(x, idx, part):
        raise KeyboardInterrupt

    result = run_epochs(X, config, 2, step, generator, progress_factory(0), "test",
                        optimizer, net)
    assert result.interrupted and result.losses == []
    with pytest.raises(KeyboardInterrupt):
        run_epochs(X, config, 2, step, generator, progress_factory(0), "test",
                   optimizer, net, replicas=_LocalPair())


def test_sharded_is_not_routed_metadata():
    """fit's ``sharded`` describes X's relation to the other processes: it gets no
    set_fit_request (whose docstring would also enter the API docs)."""
    assert not hasattr(VaDEClustering, "set_fit_request")


# One process, its own gloo group of one: every collective of Replicas, 300 times
# each, and the tensor's reference count when it returns. Without the wait,
# gloo's worker thread still held the tensor after about a quarter of the
# all-reduces (509 of 2,000 on the 2-core AVX-512 machine; 22-43 of these 600
# checks in three runs of this script without the wait).
_RELEASE_SCRIPT = """
import tempfile
import torch
import torch.distributed as dist
from sklearn_vade._distributed import Replicas

dist.init_process_group("gloo", rank=0, world_size=1,
                        store=dist.FileStore(tempfile.mktemp(), 1))
group = Replicas(0, 2, (3, 4))
module = torch.nn.Linear(3, 2)
held = 0
for _ in range(300):
    tensor = torch.ones(4)
    group.sum_(tensor)
    held += tensor._use_count() > 1
    group.broadcast_module_(module)
    held += any(t._use_count() > 1 for t in module.state_dict().values())
    assert group.extremes(-1.0, 2.0) == (-1.0, 2.0)
dist.destroy_process_group()
print("held", held)
"""


@needs_distributed
@pytest.mark.skipif(not hasattr(torch.Tensor, "_use_count"),
                    reason="this torch does not count a tensor's references")
def test_collectives_return_once_gloo_has_let_go_of_their_tensors():
    """Gloo's worker thread drops its reference to a collective's tensors after
    the caller has seen it complete; if the caller's reference is gone by then,
    the worker frees the tensor's Python object, which aborts a process that is
    shutting down (SIGABRT, "terminate called without an active exception":
    the sharded tests' processes, whose last act is a collective, did so in
    one of three CI runs). Replicas' collectives return only once it has."""
    result = subprocess.run([sys.executable, "-c", _RELEASE_SCRIPT],
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["held", "0"]


def test_the_wait_for_gloo_is_bounded(monkeypatch):
    """A tensor that something else goes on holding delays the collective's
    return by at most RELEASE_TIMEOUT; outside gloo there is no wait at all."""
    from sklearn_vade import _distributed

    counts = iter([1] + [2] * 10_000)
    monkeypatch.setattr(_distributed, "_use_count", lambda tensor: next(counts))
    monkeypatch.setattr(_distributed, "RELEASE_TIMEOUT", 0.05)
    monkeypatch.setattr(torch.distributed, "get_backend", lambda: "gloo")
    start = time.monotonic()
    with _distributed.released(torch.ones(2)):
        pass
    assert 0.05 <= time.monotonic() - start < 2.0
    counts = iter([1] + [2] * 10_000)
    monkeypatch.setattr(torch.distributed, "get_backend", lambda: "nccl")
    start = time.monotonic()
    with _distributed.released(torch.ones(2)):
        pass
    assert time.monotonic() - start < 0.05
