"""Scale-out on Dask: the same causal features, batch scores and LightGBM models as the single
process, computed over time partitions on a Dask cluster (``--cluster``).

Transaction features look back at most ``FeatureConfig.horizon_s``: a time partition computed
after replaying the horizon before it equals the one-pass result (:mod:`.partition`). Modules,
one job each: :mod:`.cluster` (connect), :mod:`.source` (read and stage the input by time),
:mod:`.features` (features per partition, risk-memory rounds), :mod:`.scoring` (batch scores),
:mod:`.training` (``lightgbm.dask``). Without ``--cluster`` none of this is imported.
"""
