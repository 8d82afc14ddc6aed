"""Neural and linear compressors of fields and summary vectors, trained for Fisher information.

- ``grf``: power-law Gaussian random fields and their analytic Fisher matrix (the test bench);
- ``spectra``: binned power spectra of periodic fields;
- ``datasets``: fiducial and derivative simulation sets (exact by autodiff, or finite differences);
- ``fisher``: Fisher matrices of summaries estimated from simulations;
- ``moped``: linear score compression and MOPED;
- ``networks``: flax NNX architectures for vectors, P(k) of fields and periodic 2D/3D fields;
- ``imnn`` and ``regression``: training of information-maximising and regression compressors;
- ``io``: saving and loading compressors and simulation sets;
- ``distill``: symbolic laws fitted to a compressor's summaries (``discovery.discover``);
- ``run`` and ``cli``: the ``cosmolaw compress`` workflow (also used by the benchmark).

Nothing here imports ``simulator``: simulators are passed in as functions ``f(theta, key)``.
"""

from discovery.compress.datasets import (
    FiniteDifferenceSet,
    FisherSet,
    simulate_finite_difference_set,
    simulate_fisher_set,
    summary_derivatives,
)
from discovery.compress.distill import SymbolicSummaries, distill, neighbour_noise
from discovery.compress.fisher import FisherStats, fisher_stats, gaussian_fisher, log_det
from discovery.compress.grf import gaussian_field, power_law_fisher
from discovery.compress.imnn import IMNNConfig, compressor_fisher, imnn_loss, train_imnn
from discovery.compress.io import (
    load_fisher_set,
    load_linear,
    load_network,
    save_fisher_set,
    save_linear,
    save_network,
)
from discovery.compress.moped import LinearCompressor, fit_moped, moped_compressor, score_compressor
from discovery.compress.networks import build_network, fit_input_scaling, summarise
from discovery.compress.regression import RegressionConfig, train_regression
from discovery.compress.spectra import PowerBins, binned_power, coarse_log_power, power_bins

__all__ = [
    "FiniteDifferenceSet",
    "FisherSet",
    "FisherStats",
    "IMNNConfig",
    "LinearCompressor",
    "PowerBins",
    "RegressionConfig",
    "SymbolicSummaries",
    "binned_power",
    "build_network",
    "coarse_log_power",
    "compressor_fisher",
    "distill",
    "neighbour_noise",
    "fisher_stats",
    "fit_input_scaling",
    "fit_moped",
    "gaussian_field",
    "gaussian_fisher",
    "imnn_loss",
    "load_fisher_set",
    "load_linear",
    "load_network",
    "log_det",
    "moped_compressor",
    "power_bins",
    "power_law_fisher",
    "save_fisher_set",
    "save_linear",
    "save_network",
    "score_compressor",
    "simulate_finite_difference_set",
    "simulate_fisher_set",
    "summarise",
    "summary_derivatives",
    "train_imnn",
    "train_regression",
]
