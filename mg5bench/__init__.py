"""mg5bench: evaluation and benchmarking for interleaved image-and-text generation (MiniGPT-5).

The packages follow the flow (docs/architecture.md draws it):

    tasks -> samples -> adapters -> runs (the run store) -> scoring -> ablation / leaderboard / human

- ``core``: foundations every stage uses (errors, limits, hashing, files, devices, the sample type); imports nothing
  else of mg5bench.
- ``data``: the real formats' readers and writers, the synthetic world, the scene oracle.
- ``tasks``: task definitions -> TaskConfig -> the protocol's samples (``SampleCache`` shares them).
- ``adapters``: one class per model family; ``metrics``: one class per metric family.
- ``runs``: what to run (``spec``), its key and folder (``keys``), the store (``store``), generation (``runner``).
- ``scoring``: the evaluators, feature caches, the scorer and its statistics, the printed table.
- ``ablation``, ``leaderboard``, ``human``: the consumers of stored runs (ablate, report, annotate).
- ``training``, ``modelcards``: on top of the pipeline (baselines' training, the shipped checkpoints' cards).
- ``catalog``: every model, metric, evaluator scheme and trainer name; ``api``: the Python API; ``cli``: the
  command line over it.

Each package's docstring says what it may import; ``tests/mg5bench/test_import_graph.py`` checks the rules.
Importing the package must stay cheap (no torch): the CLI's ``--help`` relies on it.
"""

__version__ = "0.1.0"
