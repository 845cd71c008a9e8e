"""Scoring: the stage after the run store. ``predictions`` reads and checks the outputs to score (a predictions
file, or a run folder's stored samples), ``items`` turns each sample and output into what the metrics see,
``evaluators`` are the feature backbones (``--evaluator``), ``features`` encodes every image and text once through
the feature caches, ``scorer`` runs the metrics (built by name through ``mg5bench.catalog``) with a 95% cluster
bootstrap from ``statistics`` and stores the scoring beside the generations, and ``summary`` is the table ``run``
and ``score`` print.

May import: ``mg5bench.core``, ``mg5bench.tasks``, ``mg5bench.data``, ``mg5bench.metrics``, the run store
(``runs.store``) and the catalog; never the runner, the adapters or anything after scoring (ablation, report,
human). ``evaluators`` and ``statistics`` import nothing from the catalog or the API.
"""
