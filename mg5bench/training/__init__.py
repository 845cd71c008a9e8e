"""Training code that is not MiniGPT-5's own (that lives in ``reference_model``): the Divter and sd2-ft baselines
(``mg5bench train``) and the embedded evaluator (``python -m mg5bench.training.world_clip``). It sits on top of the
pipeline and uses it (tasks, adapters, the evaluators); the catalog names the two trainers, which only
``mg5bench train`` loads, and nothing in generation or scoring imports this package. What a trainer shares with its
adapter (model parts, prompt and response formats, the delta loader) lives in the adapter's module, below both.

May import: ``mg5bench.core``, ``mg5bench.tasks``, ``mg5bench.data``, ``mg5bench.adapters``, the evaluators and
``reference_model``.
"""
