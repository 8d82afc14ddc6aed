"""The machinery every experiment shares, apart from the experiments themselves.

- ``registry``: the list of experiments, ``run_experiment`` (the run directory) and
  ``ExperimentResult``;
- ``stages``: the helpers an experiment's ``run`` outline calls: its checks, its HDF5 data
  file and its result;
- ``law_search``: the symbolic search as experiments call it (``discovery`` underneath);
- ``field_inference``: an experiment's chains of a field-level posterior (``inference``'s
  driver), resumable in a directory named after the posterior;
- ``imnn_summary``: the IMNN summary of galaxy counts for implicit-likelihood inference
  (``discovery`` trained on ``inference``'s training sets; ``cosmolaw sbi --summary imnn``);
- ``refit``: constants of a found law refitted, with uncertainties;
- ``laws``: ``Law``, what the report and ``discoveries.json`` show of a discovered law;
- ``html_report`` and ``figures``: the self-contained HTML report and its PNG figures;
- ``exports``: a law as LaTeX, Python and text files;
- ``provenance``: versions, seeds, commit and run time of a run.
"""
