"""Scale-out of the particle-mesh model across devices and hosts.

``mesh`` builds the 1D device mesh of the slab decomposition, ``fft`` the distributed real
3D FFT (all-to-all transposes under ``shard_map``), ``cic`` the sharded CIC paint and readout
with halo exchange, ``pm`` the sharded initial conditions, forces and time stepping,
``multihost`` the ``jax.distributed`` start-up from MPI, and ``cli`` the options of
``cosmolaw simulate --ensemble``. Nothing here is imported by the single-device modules.
"""
