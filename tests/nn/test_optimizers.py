"""Optimizers: 20-step trajectories against torch.optim, dtype, state and error handling."""

import json

import numpy as np
import pytest
import torch

from stoichnet.nn import kernels, optimizers
from stoichnet.nn.optimizers import (
    SGD,
    Adadelta,
    Adagrad,
    Adam,
    Adamax,
    AdamW,
    Nadam,
    RMSprop,
)
from stoichnet.nn.schedules import CosineDecay, OneCycle

# (stoichnet optimizer, torch class, torch kwargs): the same hyper-parameters in both spellings
CASES = {
    "sgd": (lambda: SGD(0.1), torch.optim.SGD, {"lr": 0.1}),
    "sgd_momentum": (lambda: SGD(0.05, momentum=0.9), torch.optim.SGD,
                     {"lr": 0.05, "momentum": 0.9}),
    "sgd_nesterov": (lambda: SGD(0.05, momentum=0.9, nesterov=True), torch.optim.SGD,
                     {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    "sgd_weight_decay": (lambda: SGD(0.05, momentum=0.5, weight_decay=0.1), torch.optim.SGD,
                         {"lr": 0.05, "momentum": 0.5, "weight_decay": 0.1}),
    "rmsprop": (lambda: RMSprop(0.01), torch.optim.RMSprop,
                {"lr": 0.01, "alpha": 0.9, "eps": 1e-7}),
    "rmsprop_momentum": (lambda: RMSprop(0.01, rho=0.8, momentum=0.7), torch.optim.RMSprop,
                         {"lr": 0.01, "alpha": 0.8, "eps": 1e-7, "momentum": 0.7}),
    "rmsprop_centered": (lambda: RMSprop(0.01, centered=True, momentum=0.3, weight_decay=0.05),
                         torch.optim.RMSprop, {"lr": 0.01, "alpha": 0.9, "eps": 1e-7,
                                               "centered": True, "momentum": 0.3,
                                               "weight_decay": 0.05}),
    "adagrad": (lambda: Adagrad(0.1), torch.optim.Adagrad,
                {"lr": 0.1, "initial_accumulator_value": 0.1, "eps": 1e-7}),
    "adagrad_weight_decay": (lambda: Adagrad(0.1, initial_accumulator_value=0.0, epsilon=1e-10,
                                             weight_decay=0.2),
                             torch.optim.Adagrad, {"lr": 0.1, "eps": 1e-10, "weight_decay": 0.2}),
    "adadelta": (lambda: Adadelta(1.0), torch.optim.Adadelta,
                 {"lr": 1.0, "rho": 0.95, "eps": 1e-7}),
    "adadelta_weight_decay": (lambda: Adadelta(0.5, rho=0.9, epsilon=1e-6, weight_decay=0.1),
                              torch.optim.Adadelta,
                              {"lr": 0.5, "rho": 0.9, "eps": 1e-6, "weight_decay": 0.1}),
    "adam": (lambda: Adam(0.01), torch.optim.Adam, {"lr": 0.01, "eps": 1e-7}),
    "adam_amsgrad": (lambda: Adam(0.01, beta_1=0.8, beta_2=0.99, amsgrad=True), torch.optim.Adam,
                     {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-7, "amsgrad": True}),
    "adam_weight_decay": (lambda: Adam(0.01, weight_decay=0.1), torch.optim.Adam,
                          {"lr": 0.01, "eps": 1e-7, "weight_decay": 0.1}),
    "adam_decoupled": (lambda: Adam(0.01, weight_decay=0.1, decoupled_weight_decay=True),
                       torch.optim.AdamW, {"lr": 0.01, "eps": 1e-7, "weight_decay": 0.1}),
    "adamw_amsgrad": (lambda: AdamW(0.01, amsgrad=True), torch.optim.AdamW,
                      {"lr": 0.01, "eps": 1e-7, "amsgrad": True}),
    "adamax": (lambda: Adamax(0.01), torch.optim.Adamax, {"lr": 0.01, "eps": 1e-7}),
    "adamax_weight_decay": (lambda: Adamax(0.01, beta_1=0.7, weight_decay=0.1),
                            torch.optim.Adamax,
                            {"lr": 0.01, "betas": (0.7, 0.999), "eps": 1e-7, "weight_decay": 0.1}),
    "nadam": (lambda: Nadam(0.01), torch.optim.NAdam, {"lr": 0.01, "eps": 1e-7}),
    "nadam_weight_decay": (lambda: Nadam(0.01, momentum_decay=0.01, weight_decay=0.1),
                           torch.optim.NAdam,
                           {"lr": 0.01, "eps": 1e-7, "momentum_decay": 0.01,
                            "weight_decay": 0.1}),
    "nadam_decoupled": (lambda: Nadam(0.01, weight_decay=0.1, decoupled_weight_decay=True),
                        torch.optim.NAdam, {"lr": 0.01, "eps": 1e-7, "weight_decay": 0.1,
                                            "decoupled_weight_decay": True}),
}


@pytest.fixture(autouse=True)
def torch_float64_scalars():
    """torch.optim keeps step counts and NAdam's mu_product in the default dtype: make the
    oracle float64 throughout."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def make_problem(dtype=np.float64):
    """A 3-5-1 tanh network, its data and initial weights [W1, b1, W2, b2]."""
    rng = np.random.default_rng(7)
    X = rng.standard_normal((16, 3)).astype(dtype)
    y = np.sin(X.sum(axis=1, keepdims=True)).astype(dtype)
    params = [rng.standard_normal((3, 5)), rng.standard_normal(5) * 0.1,
              rng.standard_normal((5, 1)), rng.standard_normal(1) * 0.1]
    return X, y, [p.astype(dtype) for p in params]


def numpy_grads(params, X, y):
    """Gradients of the mean squared error of a = tanh(X W1 + b1) W2 + b2, by hand."""
    W1, b1, W2, b2 = params
    h = np.tanh(X @ W1 + b1)
    a = h @ W2 + b2
    da = 2.0 * (a - y) / a.size
    dz = (da @ W2.T) * (1.0 - h**2)
    return [X.T @ dz, dz.sum(axis=0), h.T @ da, da.sum(axis=0)]


def run_numpy(optimizer, steps=20, dtype=np.float64):
    X, y, params = make_problem(dtype)
    for _ in range(steps):
        optimizer.step(params, numpy_grads(params, X, y))
    return params


def run_torch(torch_cls, kwargs, steps=20, before_step=None):
    X, y, params = make_problem()
    X, y = torch.from_numpy(X), torch.from_numpy(y)
    tparams = [torch.tensor(p, requires_grad=True) for p in params]
    opt = torch_cls(tparams, **kwargs)
    for _ in range(steps):
        opt.zero_grad()
        W1, b1, W2, b2 = tparams
        loss = ((torch.tanh(X @ W1 + b1) @ W2 + b2 - y) ** 2).mean()
        loss.backward()
        if before_step is not None:
            before_step(tparams)
        opt.step()
    return [p.detach().numpy() for p in tparams]


def assert_same_trajectory(ours, theirs, start):
    for i, (a, b, p0) in enumerate(zip(ours, theirs, start, strict=True)):
        assert np.linalg.norm(b - p0) > 1e-3, f"params[{i}] barely moved: the test would be void"
        rel = np.linalg.norm(a - b) / np.linalg.norm(b)
        assert rel < 1e-9, f"params[{i}] relative error {rel:.3g}"


@pytest.mark.oracle
@pytest.mark.parametrize("case", CASES)
def test_twenty_steps_match_torch(case):
    make, torch_cls, kwargs = CASES[case]
    ours = run_numpy(make())
    theirs = run_torch(torch_cls, kwargs)
    assert_same_trajectory(ours, theirs, make_problem()[2])


@pytest.mark.oracle
def test_adamax_decoupled_weight_decay_matches_torch_with_explicit_shrink():
    lr, wd = 0.01, 0.1

    def shrink(tparams):  # AdamW's rule applied by hand before torch's plain Adamax step
        with torch.no_grad():
            for p in tparams:
                p.mul_(1 - lr * wd)

    ours = run_numpy(Adamax(lr, weight_decay=wd, decoupled_weight_decay=True))
    theirs = run_torch(torch.optim.Adamax, {"lr": lr, "eps": 1e-7}, before_step=shrink)
    assert_same_trajectory(ours, theirs, make_problem()[2])


@pytest.mark.oracle
def test_scheduled_rate_matches_torch_scheduler():
    schedule = OneCycle(0.1, total_steps=20, pct_start=0.25)
    ours = run_numpy(SGD(schedule, momentum=0.9))

    X, y, params = make_problem()
    X, y = torch.from_numpy(X), torch.from_numpy(y)
    tparams = [torch.tensor(p, requires_grad=True) for p in params]
    opt = torch.optim.SGD(tparams, lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=20, pct_start=0.25,
                                                cycle_momentum=False)
    for _ in range(20):
        opt.zero_grad()
        W1, b1, W2, b2 = tparams
        ((torch.tanh(X @ W1 + b1) @ W2 + b2 - y) ** 2).mean().backward()
        opt.step()
        sched.step()
    assert_same_trajectory(ours, [p.detach().numpy() for p in tparams], params)


@pytest.mark.oracle
@pytest.mark.parametrize("make", [lambda n: Adam(0.01, amsgrad=True, weight_decay=0.01,
                                                 num_threads=n),
                                  lambda n: RMSprop(0.01, centered=True, momentum=0.5,
                                                    num_threads=n)])
def test_large_array_is_chunked_and_threaded_without_changing_results(make):
    """An array of 6 chunks and a bit; 1 and 3 threads agree bit for bit, and both agree
    with torch (the chunk boundaries must not corrupt anything)."""
    rng = np.random.default_rng(3)
    start = rng.standard_normal(6 * kernels.CHUNK_BYTES // 8 + 1)
    target = rng.standard_normal(start.size)
    results = []
    for n_threads in (1, 3):
        p = start.copy()
        opt = make(n_threads)
        for _ in range(5):
            opt.step([p], [p - target])  # gradient of 0.5 * ||p - target||^2
        results.append(p)
    np.testing.assert_array_equal(results[0], results[1])

    tp = torch.tensor(start, requires_grad=True)
    ref = make(1)
    torch_cls, kwargs = {Adam: (torch.optim.Adam, {"lr": 0.01, "eps": 1e-7, "amsgrad": True,
                                                   "weight_decay": 0.01}),
                         RMSprop: (torch.optim.RMSprop, {"lr": 0.01, "alpha": 0.9, "eps": 1e-7,
                                                         "centered": True, "momentum": 0.5})
                         }[type(ref)]
    opt = torch_cls([tp], **kwargs)
    for _ in range(5):
        tp.grad = tp.detach() - torch.from_numpy(target)
        opt.step()
    theirs = tp.detach().numpy()
    assert np.linalg.norm(results[0] - theirs) / np.linalg.norm(theirs) < 1e-12
    assert np.linalg.norm(theirs - start) > 1.0


def test_float32_adam_step_is_the_ieee_result_of_the_formula():
    """The fused kernel computes in float32, one rounding per operation, no fused
    multiply-add: bit for bit what NumPy's float32 ufuncs give for the same formula."""
    rng = np.random.default_rng(5)
    p = rng.standard_normal(100_003, dtype=np.float32)
    g = rng.standard_normal(p.size, dtype=np.float32)
    opt = Adam(0.01, weight_decay=0.1, decoupled_weight_decay=True)
    ref_p, m, v = p.copy(), np.zeros_like(p), np.zeros_like(p)
    f = np.float32
    for t in (1, 2, 3):
        opt.step([p], [g])
        root_bc2 = np.sqrt(1 - 0.999**t)
        ref_p *= f(1 - 0.01 * 0.1)
        m = m * f(0.9) + g * f(1 - 0.9)
        v = v * f(0.999) + g * g * f(1 - 0.999)
        ref_p += m / (np.sqrt(v) + f(1e-7 * root_bc2)) * f(-0.01 * root_bc2 / (1 - 0.9**t))
    np.testing.assert_array_equal(p, ref_p)
    np.testing.assert_array_equal(opt.state_dict()["exp_avg.0"], m)


@pytest.mark.parametrize("make", [lambda: Adam(0.01), lambda: RMSprop(0.01, centered=True,
                                                                      momentum=0.9),
                                  lambda: SGD(0.01, momentum=0.9), lambda: Nadam(0.01)])
def test_moments_that_decay_below_float32_normals_are_stored_as_zero(make):
    """A unit whose gradient is exactly zero must not leave subnormal moments behind (the
    CPU computes on them several times slower); moments above the threshold are kept."""
    tiny = np.finfo(np.float32).tiny
    p = np.ones(1000, np.float32)
    g = np.zeros_like(p)
    g[500:] = 1.0
    opt = make()
    opt.step([p], [np.ones_like(p)])
    state = opt.state_dict()
    for arr in state.values():
        if isinstance(arr, np.ndarray) and arr.ndim == 1:
            arr[:500] = 4 * tiny
    opt.load_state_dict(state)
    for _ in range(40):  # 4 * tiny * 0.9**40 is well below tiny
        opt.step([p], [g])
    for key, arr in opt.state_dict().items():
        if isinstance(arr, np.ndarray) and arr.ndim == 1:
            assert not np.any((arr != 0) & (np.abs(arr) < tiny)), f"subnormal values in {key}"
            if "square" not in key and "sq" not in key:
                assert np.all(arr[:500] == 0), key
            assert np.all(arr[500:] != 0), key
    assert np.all(np.isfinite(p))


@pytest.mark.parametrize("case", CASES)
def test_float32_stays_float32(case):
    make = CASES[case][0]
    opt = make()
    params32 = run_numpy(opt, steps=5, dtype=np.float32)
    assert all(p.dtype == np.float32 for p in params32)
    state = opt.state_dict()
    arrays = [v for v in state.values() if isinstance(v, np.ndarray) and v.ndim == 1]
    assert all(a.dtype == np.float32 for a in arrays)
    params64 = run_numpy(make(), steps=5)
    for a, b in zip(params32, params64, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("case", CASES)
def test_state_dict_resume_is_bit_identical(case):
    make = CASES[case][0]
    X, y, params = make_problem()
    opt = make()
    opt.learning_rate = CosineDecay(0.02, decay_steps=10)
    for _ in range(4):
        opt.step(params, numpy_grads(params, X, y))
    opt.lr_multiplier = 0.5
    saved_params = [p.copy() for p in params]
    saved_state = opt.state_dict()
    config = json.loads(json.dumps(opt.get_config()))
    for _ in range(4):
        opt.step(params, numpy_grads(params, X, y))

    resumed = optimizers.get(config)
    resumed.load_state_dict(saved_state)
    for _ in range(4):
        resumed.step(saved_params, numpy_grads(saved_params, X, y))
    for a, b in zip(saved_params, params, strict=True):
        np.testing.assert_array_equal(a, b)
    assert resumed.iterations == opt.iterations == 8


def test_pickled_optimizer_continues_identically():
    """joblib and sklearn.clone copy optimizers: the copy must carry its state."""
    import copy
    import pickle

    X, y, params = make_problem()
    opt = Nadam(0.01, num_threads=2)
    for _ in range(3):
        opt.step(params, numpy_grads(params, X, y))
    twins = [pickle.loads(pickle.dumps(opt)), copy.deepcopy(opt)]
    results = []
    for o in [opt, *twins]:
        p = [a.copy() for a in params]
        o.step(p, numpy_grads(p, X, y))
        results.append(p)
    for other in results[1:]:
        for a, b in zip(results[0], other, strict=True):
            np.testing.assert_array_equal(a, b)


def test_state_dict_is_a_copy_and_names_slots():
    opt = Adam(0.1)
    p = np.ones(3)
    opt.step([p], [np.ones(3)])
    state = opt.state_dict()
    assert set(state) == {"iterations", "lr_multiplier", "exp_avg.0", "exp_avg_sq.0"}
    np.testing.assert_allclose(state["exp_avg.0"], 0.1)  # (1 - beta_1) * g
    np.testing.assert_allclose(state["exp_avg_sq.0"], 0.001)  # (1 - beta_2) * g**2
    state["exp_avg.0"][:] = 99.0
    assert opt.state_dict()["exp_avg.0"][0] == pytest.approx(0.1)


@pytest.mark.parametrize("name", sorted(optimizers.OPTIMIZERS))
def test_get_config_round_trips_through_json(name):
    opt = optimizers.get(name.upper())
    assert isinstance(opt, optimizers.OPTIMIZERS[name])
    config = opt.get_config()
    rebuilt = optimizers.get(json.loads(json.dumps(config)))
    assert type(rebuilt) is type(opt)
    assert rebuilt.get_config() == config


def test_get_returns_instances_and_builds_schedules():
    opt = Adam()
    assert optimizers.get(opt) is opt
    built = optimizers.get({"name": "sgd", "momentum": 0.9,
                            "learning_rate": {"name": "CosineDecay", "initial_learning_rate": 0.1,
                                              "decay_steps": 10}})
    assert built.momentum == 0.9
    assert built.current_learning_rate == pytest.approx(0.1)


def test_defaults_are_keras():
    assert Adam().get_config() == {"name": "Adam", "learning_rate": 0.001, "weight_decay": 0.0,
                                   "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7,
                                   "decoupled_weight_decay": False, "amsgrad": False}
    assert RMSprop().rho == 0.9 and Adagrad().initial_accumulator_value == 0.1
    assert Adadelta().learning_rate == 0.001 and Adadelta().rho == 0.95
    assert SGD().learning_rate == 0.01


def test_get_errors():
    with pytest.raises(ValueError, match=r"unknown optimizer 'adamm'.*'adadelta'.*'sgd'"):
        optimizers.get("adamm")
    with pytest.raises(ValueError, match="has no 'name'"):
        optimizers.get({"learning_rate": 0.1})
    with pytest.raises(TypeError, match="a name, an Optimizer or a config dict"):
        optimizers.get(None)
    with pytest.raises(TypeError, match="bad arguments for optimizer Adam"):
        optimizers.get({"name": "adam", "momentum": 0.9})


@pytest.mark.parametrize("make, message", [
    (lambda: SGD(-0.1), r"learning_rate must be in \[0, inf\), got -0.1"),
    (lambda: SGD(float("nan")), "learning_rate"),
    (lambda: SGD(0.1, momentum=-1), "momentum"),
    (lambda: SGD(0.1, nesterov=True), "nesterov=True requires momentum > 0"),
    (lambda: Adam(beta_1=1.0), r"beta_1 must be in \[0, 1\), got 1.0"),
    (lambda: Adam(beta_2=-0.5), "beta_2"),
    (lambda: Adam(epsilon=-1e-8), "epsilon"),
    (lambda: Adam(weight_decay=-0.1), "weight_decay"),
    (lambda: RMSprop(rho=1.5), "rho"),
    (lambda: Adagrad(initial_accumulator_value=-1), "initial_accumulator_value"),
    (lambda: Nadam(momentum_decay=-0.1), "momentum_decay"),
    (lambda: Adam(num_threads=0), "num_threads"),
])
def test_bad_hyperparameters_raise_value_error(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_non_numbers_raise_type_error():
    with pytest.raises(TypeError, match="learning_rate must be a number, got '0.1'"):
        SGD("0.1")
    with pytest.raises(TypeError, match="amsgrad must be True or False"):
        Adam(amsgrad="yes")
    with pytest.raises(TypeError, match=r"momentum must be a number, got '0.9' \(str\)"):
        SGD(momentum="0.9")
    with pytest.raises(TypeError, match="num_threads must be an int, got '2'"):
        Adam(num_threads="2")
    with pytest.raises(TypeError, match="decoupled_weight_decay must be True or False, got 1"):
        Nadam(decoupled_weight_decay=1)


def test_step_rejects_bad_arrays():
    opt = Adam()
    with pytest.raises(ValueError, match="got 1 params but 2 grads"):
        opt.step([np.zeros(3)], [np.zeros(3), np.zeros(3)])
    with pytest.raises(ValueError, match=r"grads\[0\] is float32 \(3,\) but params\[0\] is float64"):
        opt.step([np.zeros(3)], [np.zeros(3, np.float32)])
    with pytest.raises(ValueError, match=r"grads\[0\].*\(4,\)"):
        opt.step([np.zeros(3)], [np.zeros(4)])
    with pytest.raises(TypeError, match=r"params\[0\] has dtype int64"):
        opt.step([np.zeros(3, np.int64)], [np.zeros(3, np.int64)])
    with pytest.raises(ValueError, match="C-contiguous"):
        opt.step([np.zeros((4, 4))[:, 0]], [np.zeros(4)])
    with pytest.raises(TypeError, match="lists of arrays"):
        opt.step(np.zeros(3), np.zeros(3))
    assert opt.iterations == 0
    opt.step([np.zeros(3)], [np.ones(3)])
    with pytest.raises(ValueError, match="holds state for 1 arrays but step.. received 2"):
        opt.step([np.zeros(3), np.zeros(2)], [np.ones(3), np.ones(2)])
    with pytest.raises(ValueError, match=r"state 'exp_avg' of params\[0\]"):
        opt.step([np.zeros(5)], [np.ones(5)])


def test_grads_are_not_modified_and_may_be_strided():
    p = np.arange(6.0).reshape(2, 3)
    g_base = np.arange(6.0).reshape(3, 2)
    g = g_base.T  # a Fortran-ordered view
    SGD(0.5, weight_decay=0.1).step([p], [g])
    np.testing.assert_array_equal(g_base, np.arange(6.0).reshape(3, 2))
    expected = np.arange(6.0).reshape(2, 3) - 0.5 * (g + 0.1 * np.arange(6.0).reshape(2, 3))
    np.testing.assert_allclose(p, expected, rtol=1e-15)


def test_load_state_dict_errors():
    with pytest.raises(ValueError, match=r"missing \['iterations'"):
        Adam().load_state_dict({})
    with pytest.raises(ValueError, match="missing.*mu_product"):
        Nadam().load_state_dict({"iterations": 1, "lr_multiplier": 1.0})
    with pytest.raises(ValueError, match="unexpected optimizer state entry 'momentum_buffer.0'"):
        Adam().load_state_dict({"iterations": 1, "lr_multiplier": 1.0,
                                "momentum_buffer.0": np.zeros(3)})
    with pytest.raises(ValueError, match="do not cover slots"):
        Adam().load_state_dict({"iterations": 1, "lr_multiplier": 1.0,
                                "exp_avg.0": np.zeros(3)})


def test_negative_or_nan_scheduled_rate_stops_the_step():
    opt = SGD(lambda step: 0.1 - 0.1 * step)
    p = np.zeros(2)
    opt.step([p], [np.ones(2)])
    opt.step([p], [np.ones(2)])
    with pytest.raises(ValueError, match="learning rate at step 2 is -0.1"):
        opt.step([p], [np.ones(2)])
    np.testing.assert_allclose(p, -0.1)
    opt = Adam()
    opt.lr_multiplier = float("nan")
    with pytest.raises(ValueError, match="learning rate at step 0 is nan"):
        opt.step([p], [np.ones(2)])


def test_unserialisable_schedule_is_reported():
    with pytest.raises(TypeError, match="has no get_config"):
        SGD(lambda step: 0.1).get_config()
    opt = SGD(lambda step: 0.1 / (1 + step), momentum=0.5)
    assert opt.current_learning_rate == pytest.approx(0.1)
    assert repr(opt).startswith("SGD(learning_rate=<function") and "momentum=0.5" in repr(opt)


@pytest.mark.slow
def test_threaded_step_works_in_a_forked_child():
    """A child forked after the thread pool exists must not wait on the parent's threads."""
    import multiprocessing

    p = np.zeros(300_000)
    Adam(num_threads=2).step([p], [np.ones_like(p)])  # creates the pool in this process
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        result = pool.apply_async(_threaded_adam_step).get(timeout=30)
    np.testing.assert_allclose(result, -0.001)


def _threaded_adam_step():
    p = np.zeros(300_000)
    Adam(num_threads=2).step([p], [np.ones_like(p)])
    return p[:3]


def test_thread_limit_caps_optimizers_without_an_explicit_thread_count(monkeypatch):
    """``thread_limit`` (the CLI's --threads) keeps the update on the calling thread; an
    explicit ``num_threads`` is left alone."""
    p = np.zeros(8 * kernels.CHUNK_BYTES // 8)
    submitted = []
    real_pool = kernels._thread_pool(1)

    class Pool:
        def submit(self, fn, *args):
            submitted.append(fn)
            return real_pool.submit(fn, *args)

    monkeypatch.setattr(kernels, "_thread_pool", lambda n: Pool())
    with optimizers.thread_limit(1):
        Adam().step([p], [np.ones_like(p)])
        assert submitted == []
        Adam(num_threads=2).step([p], [np.ones_like(p)])
        assert len(submitted) == 1
    Adam(num_threads=None).step([p], [np.ones_like(p)])  # the machine's CPUs again
    assert len(submitted) == 1 + (kernels.default_num_threads() - 1)
    with pytest.raises(ValueError, match="n_threads must be an int >= 1, got 0"):
        with optimizers.thread_limit(0):
            pass
