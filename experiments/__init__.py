"""End-to-end experiments reproducing discoveries, with interpretability reports.

One module per experiment (``cosmolaw list`` shows them): ``growth_index``,
``velocity_density``, ``field_level_bias`` (and its small default, ``quickstart``),
``bias_law``, ``pk_boost``, ``compressed_summary`` and ``feynman``. Each defines ``NAME``,
``QUESTION``, ``QUICK``/``FULL`` configurations and ``run(config, out_dir)``, an outline of
named stages (data, search, checks, report). The machinery they share lives in
``experiments.core``.
"""
