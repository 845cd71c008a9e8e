"""Model adapters, the stage after the samples: one module per model family (``bounds``: gt and blank; ``minigpt5``;
``sd2``: sd2 and sd2-ft; ``divter``; ``twostage``), the contract they implement (``base.Adapter``), the helpers they
share (``common``) and the backbones Divter and two-stage run (``backbones``). The catalog (``mg5bench.catalog``)
names each class; an adapter learns its name when it is looked up there. What an adapter shares with its trainer
(prompt and response formats, the packed delta loader) lives in the adapter's module, below both.

May import: ``mg5bench.core``, ``mg5bench.tasks``, ``mg5bench.data``, the generation settings (``runs.spec``) and
``reference_model`` (lazily, with torch); never the run store, runner, scoring, catalog, training, model cards or
anything after them (``tests/mg5bench/test_import_graph.py``).
"""
