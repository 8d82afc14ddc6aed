"""Compressor architectures (flax NNX): vectors of summaries, P(k) of fields, and periodic fields.

Every network maps a batch of inputs to a batch of ``n_out`` summaries. Input and output affine
scalings are non-trainable ``Scaling`` variables, set from data before training
(``fit_input_scaling``) and saved with the parameters. A network is described by a plain dict
``spec = {"kind": ..., **kwargs}`` so that ``build_network(spec)`` rebuilds it for loading.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from discovery.compress.spectra import binned_power, power_bins

ACTIVATIONS = {"gelu": nnx.gelu, "tanh": jnp.tanh, "softplus": nnx.softplus, "relu": nnx.relu}


class Scaling(nnx.Variable):
    """A fixed (non-trainable) offset or scale of inputs or outputs."""


def lecun_normal(key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
    """Weights ~ N(0, 1 / fan_in), drawn with NumPy from the layer's JAX key.

    Equivalent in distribution to JAX's LeCun initialiser but needs no XLA compilation per
    weight shape, which makes building a network fast on a busy CPU.
    """
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel())
    return jnp.asarray(rng.standard_normal(shape) / np.sqrt(np.prod(shape[:-1])), dtype)


def _activation(name: str):
    if name not in ACTIVATIONS:
        raise ValueError(f"activation={name!r}: must be one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


class MLP(nnx.Module):
    """Summaries of a feature vector: a linear map plus a multilayer perceptron, (batch, n_in) ->
    (batch, n_out). The linear path makes linear (score-like) compression the easy solution."""

    def __init__(
        self,
        n_in: int,
        n_out: int,
        hidden: Sequence[int] = (64, 64),
        activation: str = "gelu",
        *,
        rngs: nnx.Rngs,
    ):
        if int(n_in) < 1 or int(n_out) < 1:
            raise ValueError(f"n_in={n_in}, n_out={n_out}: both must be >= 1")
        self.act = _activation(activation)
        self.in_mean = Scaling(jnp.zeros(n_in))
        self.in_scale = Scaling(jnp.ones(n_in))
        self.out_mean = Scaling(jnp.zeros(n_out))
        self.out_scale = Scaling(jnp.ones(n_out))
        sizes = [int(n_in), *[int(h) for h in hidden]]
        self.layers = nnx.List(
            [
                nnx.Linear(a, b, kernel_init=lecun_normal, rngs=rngs)
                for a, b in zip(sizes[:-1], sizes[1:], strict=True)
            ]
        )
        self.head = nnx.Linear(sizes[-1], n_out, kernel_init=lecun_normal, rngs=rngs)
        self.skip = nnx.Linear(n_in, n_out, use_bias=False, kernel_init=lecun_normal, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = (x - self.in_mean[...]) / self.in_scale[...]
        h = x
        for layer in self.layers:
            h = self.act(layer(h))
        y = self.head(h) + self.skip(x)
        return y * self.out_scale[...] + self.out_mean[...]

    def features(self, x: jax.Array) -> jax.Array:
        """The MLP's input features of a batch (identity)."""
        return x


class SpectralMLP(nnx.Module):
    """Summaries of periodic fields from their binned power spectrum: (batch, *shape) -> (batch,
    n_out). A fixed P(k)-bin layer (no parameters) followed by an ``MLP``."""

    def __init__(
        self,
        shape: Sequence[int],
        box: float,
        n_bins: int,
        n_out: int,
        hidden: Sequence[int] = (64, 64),
        activation: str = "gelu",
        *,
        rngs: nnx.Rngs,
    ):
        self.shape = tuple(int(s) for s in shape)
        self.box = float(box)
        self.n_bins = int(n_bins)
        power_bins(self.shape, self.box, self.n_bins)  # validates
        self.mlp = MLP(self.n_bins, n_out, hidden, activation, rngs=rngs)

    def features(self, fields: jax.Array) -> jax.Array:
        """Band powers of a batch of fields, (batch, n_bins)."""
        bins = power_bins(self.shape, self.box, self.n_bins)
        return jax.vmap(lambda f: binned_power(f, bins, self.box))(fields)

    def __call__(self, fields: jax.Array) -> jax.Array:
        return self.mlp(self.features(fields))


#: Input channels up to which :func:`circular_conv` sums shifted copies instead of calling
#: XLA's convolution (10x faster forward, 5-10x faster gradient for one input channel on CPU;
#: slower from about 8 channels on).
SHIFTED_SUM_MAX_CHANNELS = 4


def circular_conv(conv: nnx.Conv, h: jax.Array) -> jax.Array:
    """``conv(h)`` for an ``nnx.Conv`` with ``padding="CIRCULAR"`` and stride 1.

    ``h`` is ``(batch, *mesh, c_in)``, the result ``(batch, *mesh, c_out)``. With few input
    channels the cross-correlation is evaluated as a sum over the kernel's offsets of the
    periodically shifted input times a ``(c_in, c_out)`` matrix, which is exact and much
    faster on CPUs than XLA's convolution of a thin 3D field (the first layer of an IMNN on
    galaxy counts); otherwise ``conv`` itself is called.
    """
    kernel = conv.kernel[...]
    if kernel.shape[-2] > SHIFTED_SUM_MAX_CHANNELS:
        return conv(h)
    ndim = kernel.ndim - 2
    axes = tuple(range(1, 1 + ndim))
    out = conv.bias[...]
    for offset in np.ndindex(*kernel.shape[:ndim]):
        shift = tuple((k - 1) // 2 - o for o, k in zip(offset, kernel.shape[:ndim], strict=True))
        out = out + jnp.roll(h, shift, axis=axes) @ kernel[offset]
    return out


def block_conv(conv: nnx.Conv, h: jax.Array) -> jax.Array:
    """``conv(h)`` for an ``nnx.Conv`` whose strides equal its kernel size and divide the mesh
    (non-overlapping blocks, no padding needed).

    ``h`` is ``(batch, *mesh, c_in)``, the result ``(batch, *mesh / kernel, c_out)``: each
    block is contracted with the kernel in one ``tensordot``, exact and about 2.5x faster
    than XLA's strided CPU convolution in an IMNN's gradient.
    """
    kernel = conv.kernel[...]
    ndim = kernel.ndim - 2
    n, *mesh, c_in = h.shape
    split = [n]
    for m, k in zip(mesh, kernel.shape[:ndim], strict=True):
        split += [m // k, k]
    coarse_axes = [1 + 2 * i for i in range(ndim)]
    blocks = h.reshape(*split, c_in).transpose(0, *coarse_axes, *(a + 1 for a in coarse_axes), -1)
    return jnp.tensordot(blocks, kernel, axes=ndim + 1) + conv.bias[...]


class PeriodicCNN(nnx.Module):
    """Summaries of periodic 2D or 3D fields: (batch, *shape) -> (batch, n_out).

    Blocks of circularly padded convolutions, each followed by a stride-2 convolution halving the
    mesh, then a global average and an ``MLP`` head. The summaries are invariant under periodic
    shifts by multiples of ``2**len(channels)`` cells.
    """

    def __init__(
        self,
        ndim: int,
        n_out: int,
        channels: Sequence[int] = (8, 16, 32),
        kernel_size: int = 3,
        hidden: Sequence[int] = (64,),
        activation: str = "gelu",
        *,
        rngs: nnx.Rngs,
    ):
        if int(ndim) not in (2, 3):
            raise ValueError(f"ndim={ndim}: fields must be 2D or 3D")
        self.ndim = int(ndim)
        self.act = _activation(activation)
        self.in_scale = Scaling(jnp.ones(()))
        kernel = (int(kernel_size),) * self.ndim
        convs, downs = [], []
        c_in = 1
        for c in channels:
            convs.append(
                nnx.Conv(
                    c_in, int(c), kernel, padding="CIRCULAR", kernel_init=lecun_normal, rngs=rngs
                )
            )
            downs.append(
                nnx.Conv(
                    int(c), int(c), (2,) * self.ndim, strides=2, kernel_init=lecun_normal, rngs=rngs
                )
            )
            c_in = int(c)
        self.convs = nnx.List(convs)
        self.downs = nnx.List(downs)
        self.head = MLP(2 * c_in, n_out, hidden, activation, rngs=rngs)

    def features(self, fields: jax.Array) -> jax.Array:
        """Globally pooled feature maps (mean and mean square), (batch, 2 * channels[-1])."""
        h = (fields / self.in_scale[...])[..., None]
        for conv, down in zip(self.convs, self.downs, strict=True):
            h = self.act(block_conv(down, self.act(circular_conv(conv, h))))
        axes = tuple(range(1, 1 + self.ndim))
        return jnp.concatenate([jnp.mean(h, axis=axes), jnp.mean(h**2, axis=axes)], axis=-1)

    def __call__(self, fields: jax.Array) -> jax.Array:
        return self.head(self.features(fields))


NETWORKS = {"mlp": MLP, "spectral": SpectralMLP, "cnn": PeriodicCNN}


def build_network(spec: dict[str, Any], seed: int = 0) -> nnx.Module:
    """Build a network from ``spec = {"kind": name, **constructor kwargs}`` (see ``NETWORKS``)."""
    kwargs = dict(spec)
    kind = kwargs.pop("kind", None)
    if kind not in NETWORKS:
        raise ValueError(f"kind={kind!r}: network kind must be one of {sorted(NETWORKS)}")
    return NETWORKS[kind](**kwargs, rngs=nnx.Rngs(int(seed)))


@nnx.jit
def summarise(model: nnx.Module, inputs: jax.Array) -> jax.Array:
    """Summaries of a batch of ``inputs`` (compiled once per network and input shape)."""
    return model(inputs)


@nnx.jit
def _features(model: nnx.Module, inputs: jax.Array) -> jax.Array:
    return model.features(inputs)


def head_of(model: nnx.Module) -> MLP:
    """The ``MLP`` that maps a network's features to its summaries."""
    if isinstance(model, MLP):
        return model
    return model.mlp if isinstance(model, SpectralMLP) else model.head


def fit_input_scaling(model: nnx.Module, inputs: jax.Array) -> None:
    """Set the input offsets and scales of ``model`` from a batch of training ``inputs``.

    For a CNN the field scale is the field's standard deviation; the MLP head is then scaled on
    the CNN features of the same batch.
    """
    if isinstance(model, PeriodicCNN):
        model.in_scale[...] = jnp.std(inputs)
    head = head_of(model)
    feats = _features(model, inputs)
    head.in_mean[...] = jnp.mean(feats, axis=0)
    head.in_scale[...] = jnp.std(feats, axis=0)
