"""Inverse problem: field-level Bayesian inference of initial conditions, bias and cosmology."""
