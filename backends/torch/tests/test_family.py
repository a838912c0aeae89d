"""The dropout family through torch autograd: alpha gives cot * a where kept, Gaussian cot * noise."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import unidrop_torch

import unidrop
from unidrop import reference

SEED, STREAM, P = (1 << 63) + 11, (1 << 40) + 3, 0.3


def _inputs(shape):
    rng = np.random.default_rng(5)
    return rng.standard_normal(shape).astype(np.float32), rng.standard_normal(shape).astype(np.float32)


def test_alpha_dropout_gradient_is_cotangent_times_a_where_kept():
    values, cot = _inputs((6, 20))
    x = torch.from_numpy(values).requires_grad_(True)
    y = unidrop.alpha_dropout(x, P, seed=SEED, stream=STREAM)
    (grad,) = torch.autograd.grad(y, x, torch.from_numpy(cot))
    a32 = reference.round_to(reference.alpha_affine(P)[0], "float32")
    _, keep = reference.dropout(cot.reshape(-1).tolist(), cot.shape, "float32", P, SEED, STREAM)
    want = [
        reference.round_to(v * a32, "float32") if k else 0.0
        for v, k in zip(cot.reshape(-1).tolist(), keep, strict=True)
    ]
    assert grad.reshape(-1).tolist() == want


def test_gaussian_dropout_gradient_is_cotangent_times_the_noise_within_the_bound():
    values, cot = _inputs((6, 20))
    x = torch.from_numpy(values).requires_grad_(True)
    y = unidrop.gaussian_dropout(x, P, seed=SEED, stream=STREAM)
    (grad,) = torch.autograd.grad(y, x, torch.from_numpy(cot))
    want, bounds = reference.gaussian_dropout(cot.reshape(-1).tolist(), cot.shape, "float32", P, SEED, STREAM)
    error = np.abs(grad.reshape(-1).numpy().astype(np.float64) - np.array(want))
    assert np.all(error <= np.array(bounds))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_the_family_compiles_with_every_float_symbolic(dtype):
    """``torch.compile(dynamic=True)`` makes every Python float symbolic, the module's constants and
    ``p`` included; their rounding to float32 once recursed forever in Dynamo's ``struct`` rules."""
    values, _ = _inputs((6, 20))
    x = torch.from_numpy(values).to(dtype)
    flat = x.to(torch.float64).reshape(-1).tolist()
    name = str(dtype).removeprefix("torch.")
    alpha = torch.compile(
        lambda t, p: unidrop.alpha_dropout(t, p, seed=SEED, stream=STREAM), dynamic=True, fullgraph=True
    )
    gaussian = torch.compile(
        lambda t, p: unidrop.gaussian_dropout(t, p, seed=SEED, stream=STREAM), dynamic=True, fullgraph=True
    )
    for p in (P, 0.6):  # a second p: the same graph, p an input of it
        allowed, _ = reference.alpha_dropout(flat, x.shape, name, p, SEED, STREAM)
        got = alpha(x, p).to(torch.float64).reshape(-1).tolist()
        assert all(g in pair for g, pair in zip(got, allowed, strict=True)), f"alpha p={p}"
        want, bounds = reference.gaussian_dropout(flat, x.shape, name, p, SEED, STREAM)
        error = np.abs(gaussian(x, p).to(torch.float64).reshape(-1).numpy() - np.array(want))
        assert np.all(error <= np.array(bounds)), f"gaussian p={p}"


def test_jit_trace_keeps_alpha_dropouts_mask_and_draws_a_new_seed_each_call():
    """The tracer cannot record the keep_mask operators' device argument (it crashed), and a drawn
    seed read back to the host became a constant of the trace (one Gaussian noise for every call)."""
    values, other = _inputs((6, 20))
    x = torch.from_numpy(values)
    traced = torch.jit.trace(
        lambda t: unidrop.alpha_dropout(t, P, seed=SEED, stream=STREAM, return_mask=True), (x,)
    )
    y, keep = traced(torch.from_numpy(other))
    allowed, want_keep = reference.alpha_dropout(
        other.reshape(-1).tolist(), other.shape, "float32", P, SEED, STREAM
    )
    assert keep.reshape(-1).tolist() == want_keep
    assert all(v in pair for v, pair in zip(y.to(torch.float64).reshape(-1).tolist(), allowed, strict=True))
    gaussian = torch.jit.trace(lambda t: unidrop.gaussian_dropout(t, P), (x,), check_trace=False)
    draws = []
    for _ in range(2):
        state = torch.get_rng_state()
        traced_noise = gaussian(x)
        torch.set_rng_state(state)
        draws.append(traced_noise)
        assert torch.equal(traced_noise, unidrop.gaussian_dropout(x, P)), (
            "the traced call draws as eager does"
        )
    assert not torch.equal(draws[0], draws[1]), "each call of the trace draws a new seed"


@pytest.mark.parametrize("module", [unidrop_torch.AlphaDropout, unidrop_torch.FeatureAlphaDropout])
def test_a_traced_alpha_module_saves_loads_and_keeps_the_reference_values_and_gradient(module, tmp_path):
    """torch.jit.trace records operators only: the module's autograd Function would be a Python
    call that torch.jit.save refuses. Traced, saved and loaded, it gives eager's values and gradient."""
    values, cotangent = _inputs((6, 20, 3))
    layer = module(P, seed=SEED, stream=STREAM)
    traced = torch.jit.trace(layer, torch.from_numpy(values), check_trace=False)
    torch.jit.save(traced, tmp_path / "alpha.pt")
    loaded = torch.jit.load(tmp_path / "alpha.pt")
    results = []
    for run in (layer, loaded):
        x = torch.from_numpy(values).requires_grad_(True)
        y = run(x)
        y.backward(torch.from_numpy(cotangent))
        results.append((y.detach(), x.grad))
    assert torch.equal(results[0][0], results[1][0]) and torch.equal(results[0][1], results[1][1])
    drawing = torch.jit.trace(module(P), torch.from_numpy(values), check_trace=False)  # seed=None
    assert not torch.equal(drawing(torch.from_numpy(values)), drawing(torch.from_numpy(values)))


def test_alpha_dropout_keeps_a_channels_last_layout_as_torchs_does():
    x = torch.from_numpy(_inputs((2, 3, 4, 5))[0]).to(memory_format=torch.channels_last)
    allowed, _ = reference.alpha_dropout(x.reshape(-1).tolist(), x.shape, "float32", P, SEED, STREAM)
    for y in (
        unidrop.alpha_dropout(x, P, seed=SEED, stream=STREAM),
        unidrop_torch.AlphaDropout(P, seed=SEED, stream=STREAM)(x),
    ):
        assert y.is_contiguous(memory_format=torch.channels_last)
        assert all(
            v in pair for v, pair in zip(y.to(torch.float64).reshape(-1).tolist(), allowed, strict=True)
        )


def test_inplace_on_a_tensor_returns_it_with_dropouts_values():
    values, _ = _inputs((5, 7))
    x = torch.from_numpy(values.copy())
    want = unidrop.dropout(torch.from_numpy(values), P, seed=SEED)
    assert unidrop.dropout(x, P, seed=SEED, inplace=True) is x
    assert torch.equal(x, want)


def _unwritable() -> list[tuple[torch.Tensor, str]]:
    leaf = torch.ones(6, requires_grad=True)
    with torch.inference_mode():
        inference = torch.ones(6)
    with torch.no_grad():
        no_grad_view = leaf[1:]
    return [
        (no_grad_view, "A view was created in no_grad mode"),
        (leaf, "a leaf Variable that requires grad"),
        (leaf[2:], "a view of a leaf Variable that requires grad"),
        (torch.ones(1, 6).expand(3, 6), r"single memory location \(shape \(3, 6\), strides \(0, 1\)\)"),
        (inference, "inference tensor outside InferenceMode"),
    ]


ENTRY_POINTS = {
    "unidrop.dropout": lambda x: unidrop.dropout(x, P, inplace=True),
    "unidrop_torch.dropout": lambda x: unidrop_torch.dropout(x, P, inplace=True),
    "Dropout": lambda x: unidrop_torch.Dropout(P, inplace=True)(x),
}


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
@pytest.mark.parametrize("case", range(5))
def test_a_refused_inplace_write_draws_no_seed_and_changes_nothing(case, entry):
    x, message = _unwritable()[case]
    before = x.detach().clone()
    state = torch.get_rng_state()
    with pytest.raises(RuntimeError, match=message):
        ENTRY_POINTS[entry](x)  # seed=None: torch's generator would be drawn from
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(x.detach(), before)
