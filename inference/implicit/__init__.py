"""Implicit-likelihood (simulation-based) inference on summaries of the simulated survey.

The chain ``simulation budget -> summaries -> posterior estimator -> diagnostics``, one module
per step; nothing heavy (flowjax, tinygp, getdist) is imported with the package:

- ``prior``: the prior over the inferred parameters (a box or a Gaussian), its draws and the
  map to an unbounded space where the flows live;
- ``training_set``: parameters drawn from the prior, simulated through the mocks' observation
  model (:func:`simulator.observe.mock.make_mock`), summarised and stored in
  ``DIR/training_set.h5``; resumable, shared among MPI ranks;
- ``summaries``: binned P(k) of the galaxy counts with a k_max cut, MOPED-style linear
  compression fitted on the training set, and the registry of summaries learned from the
  counts themselves (the IMNN, registered by ``experiments.core.imnn_summary``);
- ``flows``: neural posterior estimation with an ensemble of flowjax normalizing flows;
- ``sequential``: the truncated-prior sequential variant (TSNPE) for expensive simulators;
- ``bolfi``: Gaussian-process likelihood-free inference (BOLFI) with tinygp, for budgets of a
  few hundred simulations;
- ``diagnostics``: TARP coverage, SBC ranks, posterior predictive check and the
  out-of-distribution warning for an observed summary;
- ``linear_gaussian``: a linear-Gaussian simulator with its exact posterior (tests, benchmark);
- ``getdist_export``: posteriors (and field-level ``chain.h5`` chains) as GetDist samples and
  contour plots;
- ``cli``: ``cosmolaw sbi simulate|train|infer``.
"""
