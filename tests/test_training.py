"""Phase 3: the anchored warm-up, the learning-rate schedule, the stopping rule and
the drift diagnostic of the joint ELBO training."""

import numpy as np
import pytest
import torch
from sklearn.datasets import make_blobs
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import adjusted_rand_score

from sklearn_vade import VaDEClustering, _elbo, _engine, _training
from sklearn_vade._engine import run_epochs
from sklearn_vade._init import initialise_mixture
from sklearn_vade._pretrain import pretrain_autoencoder
from sklearn_vade._progress import progress_factory
from sklearn_vade._training import negative_elbo, train_vade
from sklearn_vade._utils import torch_generator


def _pretrained(pi_update="em", **changes):
    """A pretrained and initialised small network on three blobs, with the fit's
    configuration (``changes`` replace fields of it)."""
    X, _ = make_blobs(n_samples=240, centers=3, n_features=5, cluster_std=1.0,
                      random_state=1)
    est = VaDEClustering(n_clusters=3, hidden_layer_sizes=(16,), latent_dim=2,
                         pretrain_epochs=5, batch_size=32, init_params="gmm",
                         pi_update=pi_update, random_state=0)
    est._validate_params()
    prep = est._prepare(X, continuing=False)
    config = prep.config._replace(**changes)
    generator = torch_generator(0, torch.device("cpu"))
    net = prep.network(generator)
    pretrain_autoencoder(net, prep.X_train, config, generator, progress_factory(0))
    start = initialise_mixture(net, prep.X_train, config, np.random.RandomState(0))
    return net, prep.X_train, config, generator, start


def test_warm_up_anchors_q_and_keeps_pi_then_gamma_takes_over():
    net, X, config, generator, start = _pretrained(warmup_epochs=3, tol=0.0)
    initial_weights = net.prior.weights.detach().clone()
    result = train_vade(net, X, config, generator, progress_factory(0), 3,
                        start.labels)
    assert [h["warmup"] for h in result.history] == [True] * 3
    # pi is not moved by the EM step while q(c|x) is the anchored partition
    torch.testing.assert_close(net.prior.weights.detach(), initial_weights)
    for record in result.history:  # gamma follows the anchored partition
        assert record["init_agreement"] > 0.9
    more = train_vade(net, X, config._replace(warmup_epochs=0), generator,
                      progress_factory(0), 2, start.labels)
    assert [h["warmup"] for h in more.history] == [False, False]
    assert not torch.allclose(net.prior.weights.detach(), initial_weights)


def test_init_agreement_is_the_rand_index_with_the_start():
    net, X, config, generator, start = _pretrained(warmup_epochs=0, tol=0.0,
                                                   learning_rate=1e-12,
                                                   pi_update="fixed")
    result = train_vade(net, X, config, generator, progress_factory(0), 1,
                        start.labels)
    with torch.no_grad():
        mu = net.encode(X)[0]
        labels = _elbo.log_responsibilities(mu, net.prior.log_pi, net.prior.mu_c,
                                            net.prior.log_var_c).argmax(1).numpy()
    # a negligible step and a fixed pi: the epoch's labels are those of the
    # network as it is now
    assert result.history[0]["init_agreement"] == pytest.approx(
        adjusted_rand_score(start.labels, labels))
    without = train_vade(net, X, config, generator, progress_factory(0), 1)
    assert without.history[0]["init_agreement"] is None


def test_an_explicit_q_replaces_gamma_in_the_bound():
    net, X, config, _, start = _pretrained()
    x = X[:50]
    eps = torch.randn(50, 2, generator=torch.Generator().manual_seed(1))
    K, smoothing = 3, 0.1
    q = np.full((K, K), smoothing / K) + (1 - smoothing) * np.eye(K)
    log_q = torch.log(torch.as_tensor(q[start.labels[:50]], dtype=torch.float32))
    loss, *_ = negative_elbo(net, x, eps, config.likelihood, log_q=log_q)
    with torch.no_grad():
        mu, log_var, _, decoded = net(x, eps)
        prior = net.prior
        recon = _elbo.reconstruction_log_likelihood(x, decoded, config.likelihood,
                                                    net.log_var_x)
        expected = _elbo.elbo_terms(recon, mu, log_var, log_q, prior.log_pi,
                                    prior.mu_c, prior.log_var_c).total.mean()
    torch.testing.assert_close(loss.detach(), -expected)
    gamma_loss, *_ = negative_elbo(net, x, eps, config.likelihood)
    assert not torch.isclose(loss, gamma_loss)


def test_the_warm_up_q_is_the_partition_itself():
    """Unsmoothed (the default), q(c|x) is one-hot: the bound is finite, and a
    component pulls only on its own cluster's codes (moving a component no sample
    is anchored to changes nothing)."""
    net, X, config, _, start = _pretrained()
    assert config.anchor_smoothing == 0.0
    x, labels = X[:50], start.labels[:50]
    eps = torch.randn(50, 2, generator=torch.Generator().manual_seed(1))
    log_q = torch.log(torch.eye(3))[labels]
    loss, *_ = negative_elbo(net, x, eps, config.likelihood, log_q=log_q)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in net.parameters()
               if p.grad is not None)
    rows = labels != labels[0]  # the rows of the other two clusters
    log_q = torch.log(torch.eye(3))[labels[rows]]
    before, *_ = negative_elbo(net, x[rows], eps[rows], config.likelihood,
                               log_q=log_q)
    with torch.no_grad():
        net.prior.mu_c[labels[0]] += 100.0
    after, *_ = negative_elbo(net, x[rows], eps[rows], config.likelihood,
                              log_q=log_q)
    torch.testing.assert_close(before, after)


def test_learning_rate_steps_down_to_its_floor():
    net, X, config, generator, _ = _pretrained()
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=1.0)
    seen = []

    def step(x, idx, part):
        optimizer.zero_grad()
        loss = (param - 1.0).pow(2).sum()
        loss.backward()
        optimizer.step()
        return loss.detach()

    def on_epoch_end(epoch, loss):
        seen.append(optimizer.param_groups[0]["lr"])

    run_epochs(X, config, 6, step, generator, progress_factory(0), "test", optimizer,
               net, on_epoch_end, lr_factor=lambda e: 0.5 if (e + 1) % 2 == 0 else 1.0,
               lr_floor=0.3)
    assert seen == [1.0, 0.5, 0.5, 0.3, 0.3, 0.3]


def test_no_convergence_before_warm_up_and_min_epochs():
    net, X, config, generator, start = _pretrained(warmup_epochs=2, min_epochs=3,
                                                   tol=1.0)
    result = train_vade(net, X, config, generator, progress_factory(0), 20,
                        start.labels)
    assert result.converged and result.n_epochs == 5
    assert sum(h["warmup"] for h in result.history) == 2


@pytest.mark.parametrize("sparse", [False, True])
def test_warm_up_steps_use_each_rows_own_anchor(monkeypatch, sparse):
    """The anchored q(c|x) of a batch is that of its rows, after the shuffle."""
    from scipy.sparse import csr_matrix

    from sklearn_vade import _training
    from sklearn_vade._data import training_rows

    net, X, config, generator, start = _pretrained(warmup_epochs=2, tol=0.0)
    rows = np.asarray(X.numpy(), dtype=np.float64)
    if sparse:
        X = training_rows(csr_matrix(rows), np.zeros(rows.shape[1]),
                          np.ones(rows.shape[1]), "cpu")
    seen = []
    original = _training.negative_elbo

    def recording(net_, x, eps, likelihood, compute_dtype=None,
                  reconstruction_weight=1.0, log_q=None):
        if log_q is not None:  # which rows these are: match them to X by value
            x_rows = x.numpy().astype(np.float32)
            index = [int(np.flatnonzero(np.all(rows.astype(np.float32) == r, 1))[0])
                     for r in x_rows]
            seen.append((log_q.argmax(1).numpy(), start.labels[index]))
        return original(net_, x, eps, likelihood, compute_dtype,
                        reconstruction_weight, log_q)

    monkeypatch.setattr(_training, "negative_elbo", recording)
    train_vade(net, X, config, generator, progress_factory(0), 3, start.labels)
    n_batches = -(-len(rows) // config.batch_size)
    assert len(seen) == 2 * n_batches  # the warm-up epochs only
    for anchored, expected in seen:
        np.testing.assert_array_equal(anchored, expected)


def test_convergence_waits_for_the_end_of_the_warm_up():
    net, X, config, generator, start = _pretrained(warmup_epochs=3, min_epochs=0,
                                                   tol=1.0)
    result = train_vade(net, X, config, generator, progress_factory(0), 20,
                        start.labels)
    # the first epoch after the warm-up has no previous gamma partition to compare
    assert result.converged and result.n_epochs == 3 + 2


def test_warm_up_has_its_own_step_then_the_schedule_starts(monkeypatch):
    from sklearn_vade import _training

    net, X, config, generator, start = _pretrained(
        warmup_epochs=2, warmup_learning_rate=1e-3, learning_rate=1e-4,
        lr_step_epochs=2, lr_step_factor=0.5, lr_floor=0.0, tol=0.0)
    optimizers = []
    make = _training.make_optimizer

    def recording(params, lr):
        optimizers.append(make(params, lr))
        return optimizers[-1]

    monkeypatch.setattr(_training, "make_optimizer", recording)
    seen = []
    original = _training.run_epochs

    def watching(*args, **kwargs):
        on_epoch_end = args[9]

        def record(epoch, loss):
            seen.append(optimizers[0].param_groups[0]["lr"])
            return on_epoch_end(epoch, loss)

        return original(*args[:9], record, *args[10:], **kwargs)

    monkeypatch.setattr(_training, "run_epochs", watching)
    train_vade(net, X, config, generator, progress_factory(0), 6, start.labels)
    # (the rate after each epoch) warm-up at 1e-3, then 1e-4 halved every 2 epochs
    np.testing.assert_allclose(seen, [1e-3, 1e-4, 1e-4, 5e-5, 5e-5, 2.5e-5])


def _learning_rates(monkeypatch, config, net, X, generator, start, n_epochs):
    """The history and the optimiser's step after each epoch of a joint phase."""
    optimizers, seen = [], []
    make, run = _training.make_optimizer, _training.run_epochs

    def recording(params, lr):
        optimizers.append(make(params, lr))
        return optimizers[-1]

    def watching(*args, **kwargs):
        on_epoch_end = args[9]

        def record(epoch, loss):
            stop = on_epoch_end(epoch, loss)
            seen.append(optimizers[0].param_groups[0]["lr"])
            return stop

        return run(*args[:9], record, *args[10:], **kwargs)

    monkeypatch.setattr(_training, "make_optimizer", recording)
    monkeypatch.setattr(_training, "run_epochs", watching)
    result = train_vade(net, X, config, generator, progress_factory(0), n_epochs,
                        start.labels)
    return result, seen


@pytest.mark.parametrize("agreement, rising, n_warm", [
    (0.9, False, 3), (1.01, False, 6), (0.9, True, 6)])
def test_the_warm_up_ends_once_gamma_agrees_and_the_bound_settles(
        monkeypatch, agreement, rising, n_warm):
    """After WARMUP_MIN_EPOCHS epochs, a warm-up whose gamma partition agrees with
    the start (ARI >= WARMUP_AGREEMENT) and whose bound no longer rises over the
    last WARMUP_SETTLED_EPOCHS epochs ends there, and the joint phase goes on as
    after a warm-up of that budget: the joint step, then its schedule. Without
    the agreement, or while the bound rises, it runs its whole budget."""
    monkeypatch.setattr(_training, "WARMUP_MIN_EPOCHS", 3)
    monkeypatch.setattr(_training, "WARMUP_SETTLED_EPOCHS", 3)
    monkeypatch.setattr(_training, "WARMUP_AGREEMENT", agreement)
    asked = []

    def bound_rising(elbos):
        asked.append(list(elbos))
        return rising

    monkeypatch.setattr(_training, "bound_rising", bound_rising)
    net, X, config, generator, start = _pretrained(
        warmup_epochs=6, warmup_extension=0, warmup_learning_rate=1e-3,
        learning_rate=1e-4, lr_step_epochs=2, lr_step_factor=0.5, lr_floor=0.0,
        tol=0.0)  # (going on past the budget: the test below)
    result, seen = _learning_rates(monkeypatch, config, net, X, generator, start, 10)
    assert [h["warmup"] for h in result.history] == [True] * n_warm + [False] * (
        10 - n_warm)
    if agreement < 1:  # three blobs: gamma agrees with the start from the first epochs
        assert result.history[2]["init_agreement"] >= 0.9
        # the bound is asked about the last three epochs' ELBOs, this one's last
        assert asked[0] == [h["elbo"] for h in result.history[:3]]
    else:
        assert asked == []
    expected = [1e-3] * (n_warm - 1) + [1e-4]  # the warm-up's last epoch: 1e-4
    for epoch in range(n_warm, 10):  # then halved every second epoch
        after = epoch + 1 - n_warm
        expected.append(expected[-1] * (0.5 if after % 2 == 0 else 1.0))
    np.testing.assert_allclose(seen, expected)
    assert result.warmup_seconds > 0


@pytest.mark.parametrize("answers, n_warm", [
    ([True, True, False], 6),  # goes on twice, then gamma no longer comes closer
    ([True] * 10, 7),  # still rising: at most warmup_extension (3) epochs more
    ([False], 4),  # settled at its budget: ends there
])
def test_the_warm_up_goes_on_while_gamma_still_comes_closer_to_the_start(
        monkeypatch, answers, n_warm):
    """At the end of its budget, a warm-up whose gamma partition still comes
    closer to the start (its agreements over the last WARMUP_SETTLED_EPOCHS
    epochs rising) goes on for one more epoch at the warm-up's step, at most
    warmup_extension times; the joint phase keeps its own number of epochs
    after it, then the same schedule as after a warm-up of that length."""
    monkeypatch.setattr(_training, "WARMUP_SETTLED_EPOCHS", 3)
    monkeypatch.setattr(_training, "WARMUP_AGREEMENT", 1.01)  # never agrees enough
    asked, replies = [], iter(answers)

    def rising(values):
        asked.append(list(values))
        return next(replies)

    monkeypatch.setattr(_training, "bound_rising", rising)
    net, X, config, generator, start = _pretrained(
        warmup_epochs=4, warmup_extension=3, warmup_learning_rate=1e-3,
        learning_rate=1e-4, lr_step_epochs=2, lr_step_factor=0.5, lr_floor=0.0,
        tol=0.0)
    result, seen = _learning_rates(monkeypatch, config, net, X, generator, start, 8)
    extended = n_warm - 4
    assert result.n_epochs == 8 + extended  # the joint phase's 4 epochs after it
    assert [h["warmup"] for h in result.history] == [True] * n_warm + [False] * 4
    # asked at the end of each warm-up epoch from the budget's last one on, about
    # the last three epochs' agreements with the start, this one's last
    agreements = [h["init_agreement"] for h in result.history]
    n_asked = extended + (extended < 3)  # not asked once at the cap
    assert asked == [agreements[epoch - 2:epoch + 1]
                     for epoch in range(3, 3 + n_asked)]
    expected = [1e-3] * (n_warm - 1) + [1e-4]  # the warm-up's last epoch: 1e-4
    for epoch in range(n_warm, n_warm + 4):  # then halved every second epoch
        after = epoch + 1 - n_warm
        expected.append(expected[-1] * (0.5 if after % 2 == 0 else 1.0))
    np.testing.assert_allclose(seen, expected)


@pytest.mark.parametrize("changes, agreement", [
    ({"warmup_extension": 0}, 1.01),  # an explicit max_epochs: the budget holds
    ({}, 0.0),  # gamma agrees with the start enough: nothing left to come closer
    ({}, None),  # the warm-up of fixed length (benchmarks/bench_phases.py)
])
def test_the_warm_up_does_not_go_on_without_its_extension_or_once_gamma_agrees(
        monkeypatch, changes, agreement):
    """A warm-up at its budget does not go on, and its agreement is not even
    asked about, without its extension (``warmup_extension=0``), when gamma's
    partition already agrees with the start at WARMUP_AGREEMENT, or without that
    threshold (None)."""
    monkeypatch.setattr(_training, "WARMUP_SETTLED_EPOCHS", 3)
    monkeypatch.setattr(_training, "WARMUP_AGREEMENT", agreement)
    asked = []
    monkeypatch.setattr(_training, "bound_rising",
                        lambda values: asked.append(values) or True)
    net, X, config, generator, start = _pretrained(
        **{"warmup_epochs": 4, "warmup_extension": 5, "tol": 0.0, **changes})
    result = train_vade(net, X, config, generator, progress_factory(0), 6,
                        start.labels)
    assert [h["warmup"] for h in result.history] == [True] * 4 + [False] * 2
    assert asked == []


def test_a_warm_up_that_ended_early_does_not_go_on_after_a_rollback(monkeypatch):
    """The extension is for a warm-up at the end of its budget: after an early
    end, a rollback that brings that end back as the last epoch does not
    extend it."""
    monkeypatch.setattr(_training, "WARMUP_SETTLED_EPOCHS", 3)
    monkeypatch.setattr(_training, "WARMUP_AGREEMENT", 1.01)
    monkeypatch.setattr(_training, "bound_rising", lambda values: True)
    net, X, config, generator, start = _pretrained(warmup_epochs=6,
                                                   warmup_extension=5, tol=0.0)
    phase = _training.JointPhase(net, X, config, generator, start.labels)
    phase.history = [{"init_agreement": 0.5 + 0.1 * i} for i in range(3)]
    assert phase.extends_warmup(4, 0.9) is False  # not yet the budget's end
    assert phase.extends_warmup(5, 0.9) is True  # its end, still coming closer
    phase.end_warmup(4)  # had it ended early after 4 epochs
    assert phase.extends_warmup(3, 0.9) is False


def test_the_bound_rises_by_its_trend_against_its_noise():
    """A slope more than two standard errors above 0 rises, whatever the bound's
    scale; noise around a level, or a falling bound, does not."""
    noise = np.random.RandomState(0).normal(0.0, 0.1, size=20)
    epochs = np.arange(20)
    assert not _training.bound_rising(-23.6 + noise)
    assert _training.bound_rising(-8.0 + 0.05 * epochs + noise)
    assert _training.bound_rising(1e4 + 0.05 * epochs + noise)
    assert not _training.bound_rising(-8.0 - 0.05 * epochs + noise)
    # a rise hidden in ten times the noise is not yet a rise
    assert not _training.bound_rising(-8.0 + 0.005 * epochs + noise * 10)


def _emptying_after(n_steps, monkeypatch):
    """Make every training step after the first ``n_steps`` push component 2 far
    from all codes, as a joint phase that empties a component does."""
    calls = []
    original = _training.negative_elbo

    def emptying(net, *args, **kwargs):
        calls.append(1)
        if len(calls) > n_steps:
            with torch.no_grad():
                net.prior.mu_c[2] = 1e3
        return original(net, *args, **kwargs)

    monkeypatch.setattr(_training, "negative_elbo", emptying)


def test_a_joint_phase_that_empties_a_component_is_not_kept(monkeypatch):
    net, X, config, generator, start = _pretrained(warmup_epochs=0, tol=0.0)
    steps = -(-X.shape[0] // config.batch_size)
    _emptying_after(2 * steps, monkeypatch)  # two good epochs, then the drift
    result = train_vade(net, X, config, generator, progress_factory(0), 4,
                        start.labels)
    assert [h["n_empty"] for h in result.history] == [0, 0, 1, 1]
    assert result.kept_epochs == 2 and result.n_epochs == 4
    assert float(net.prior.mu_c[2].detach().abs().max()) < 1e3  # drift undone
    with torch.no_grad():  # and every component holds samples again
        mu = net.encode(X)[0]
        labels = _elbo.log_responsibilities(mu, net.prior.log_pi, net.prior.mu_c,
                                            net.prior.log_var_c).argmax(1)
    assert torch.unique(labels).numel() == 3


def test_fit_warns_when_it_keeps_an_earlier_epoch(monkeypatch):
    X, _ = make_blobs(n_samples=240, centers=3, n_features=5, cluster_std=1.0,
                      random_state=1)
    est = VaDEClustering(n_clusters=3, hidden_layer_sizes=(16,), latent_dim=2,
                         pretrain_epochs=5, max_epochs=4, batch_size=32, tol=0.0,
                         init_params="gmm", random_state=0)
    _emptying_after(3 * 8, monkeypatch)  # 8 steps per epoch: 2 warm-up + 1 more
    with pytest.warns(ConvergenceWarning, match=r"emptied 1 of the 3 components by "
                      r"its last epoch; the model kept is that after epoch 3 of 4"):
        est.fit(X)
    assert np.bincount(est.labels_, minlength=3).min() > 0
    assert [h["n_empty"] for h in est.history_] == [0, 0, 0, 1]


def test_convergence_warning_says_what_the_auto_budget_means(small_digits):
    X = small_digits[0][:150]
    common = dict(n_clusters=3, hidden_layer_sizes=(16,), latent_dim=2,
                  pretrain_epochs=3, tol=0.0, random_state=0)
    with pytest.warns(ConvergenceWarning, match=r"after max_epochs='auto' \(200 "
                      r"epochs\)\. With the "
                      r"'auto' budget this is common: the samples still moving lie "
                      r"on borders between clusters"):  # 150 warm-up + 50 epochs
        VaDEClustering(**common).fit(X)
    with pytest.warns(ConvergenceWarning, match=r"after max_epochs=4 \(4 epochs\)\. "
                      r"Increase "
                      r"max_epochs, or raise tol\.$"):
        VaDEClustering(max_epochs=4, **common).fit(X)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_a_non_finite_weight_counts_as_divergence(bad):
    """The divergence check sees one non-finite value among all the weights, even
    when the epoch's loss was finite."""
    net = _pretrained()[0]
    assert not _engine._diverged(1.0, 1.0, net)
    assert _engine._diverged(float("nan"), 1.0, net)
    assert _engine._diverged(1.0 + 3 * _engine.DIVERGENCE_FACTOR, 1.0, net)
    params = list(net.parameters())
    with torch.no_grad():
        params[len(params) // 2].view(-1)[-1] = bad
    assert _engine._diverged(1.0, 1.0, net)


def test_the_guard_judges_the_end_of_epoch_model(monkeypatch):
    """Every minibatch of the last epoch used every component, but the model at the
    epoch's end leaves one empty: the guard goes back to the epoch before."""
    net, X, config, generator, start = _pretrained(warmup_epochs=0, tol=0.0)
    n_steps = 3 * -(-X.shape[0] // config.batch_size)
    calls = []
    project = net.prior.project

    def drift_at_the_last_step():
        project()
        calls.append(1)
        if len(calls) == n_steps:  # after the last minibatch's labels were taken
            with torch.no_grad():
                net.prior.mu_c[2] = 1e3

    monkeypatch.setattr(net.prior, "project", drift_at_the_last_step)
    result = train_vade(net, X, config, generator, progress_factory(0), 3,
                        start.labels)
    assert [h["n_empty"] for h in result.history] == [0, 0, 0]
    assert result.emptied == 1 and result.kept_epochs == 2
    assert _training._n_empty(net, X, config.batch_size) == 0


def test_the_guard_keeps_the_last_model_when_no_recent_one_is_full(monkeypatch):
    """Drift from the first step: no epoch's model has every component in use, so
    the last model stays (fit then warns about empty components)."""
    net, X, config, generator, start = _pretrained(warmup_epochs=0, tol=0.0)
    _emptying_after(0, monkeypatch)
    result = train_vade(net, X, config, generator, progress_factory(0), 2,
                        start.labels)
    assert result.kept_epochs is None and result.emptied == 1
    assert float(net.prior.mu_c[2].detach().abs().max()) >= 1e3


def _with_far_components(net, components):
    """A copy of net's state in which ``components`` sit far from every code."""
    state = _training._clone_state(net)
    for c in components:
        state["prior.mu_c"][c] = 1e3
    return state


def test_the_guard_falls_back_to_the_warm_up_then_to_the_fewest_empty():
    """No recent model is full: the guard takes the model at the end of the
    warm-up when it is; else the candidate that leaves the fewest empty, when that
    is fewer than the last model leaves; else the last model."""
    net, X, config, generator, start = _pretrained(warmup_epochs=1, tol=0.0)
    assert _training._n_empty(net, X, config.batch_size) == 0
    full = _training._clone_state(net)
    one_empty = _with_far_components(net, [2])
    two_empty = _with_far_components(net, [1, 2])

    def guard(warmup_state, recent, last):
        phase = _training.JointPhase(net, X, config, generator, start.labels)
        phase.history = [{}] * 5
        phase.warmup_state = warmup_state
        phase.full_states.extend(recent)
        net.load_state_dict(last)
        return phase.keep_a_full_model()

    assert guard((1, full), [(3, one_empty), (4, two_empty)], two_empty) == (1, 2, 0)
    assert _training._n_empty(net, X, config.batch_size) == 0
    assert guard((1, two_empty), [(3, one_empty)], two_empty) == (3, 2, 1)
    assert _training._n_empty(net, X, config.batch_size) == 1
    assert guard(None, [(3, two_empty)], one_empty) == (None, 1, 1)
    assert _training._n_empty(net, X, config.batch_size) == 1
    assert guard(None, [], full) == (None, 0, 0)


def test_fit_warns_when_the_model_kept_still_has_empty_components(monkeypatch):
    """The guard's result travels to fit's warning: with no full model to go back
    to, the warning names the one that leaves the fewest empty."""
    X, _ = make_blobs(n_samples=240, centers=3, n_features=5, cluster_std=1.0,
                      random_state=1)
    est = VaDEClustering(n_clusters=3, hidden_layer_sizes=(16,), latent_dim=2,
                         pretrain_epochs=5, max_epochs=4, batch_size=32, tol=0.0,
                         init_params="gmm", random_state=0)
    monkeypatch.setattr(_training.JointPhase, "keep_a_full_model",
                        lambda phase: (3, 2, 1))
    with pytest.warns(ConvergenceWarning, match=r"emptied 2 of the 3 components by "
                      r"its last epoch; the model kept is that after epoch 3 of 4, "
                      r"which left the fewest empty \(1\) \(history_ shows"):
        est.fit(X)
