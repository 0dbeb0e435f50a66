"""Lightning training: ``PaGeoDataModule`` (graphs + cached embeddings, node-budget batches), ``PaGeoModule``
(encoder + task heads + losses + metrics, multi-task), the ``pa-geo fit|validate|test|predict`` LightningCLI entry
(:mod:`pa_geo.train.cli`) and the ``predictions.csv`` writer. Heavy imports stay in the submodules."""
