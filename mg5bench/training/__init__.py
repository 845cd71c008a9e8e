"""Training code that is not MiniGPT-5's own (that lives in ``reference_model``): the Divter and sd2-ft baselines
(``mg5bench train``) and the embedded evaluator (``python -m mg5bench.training.world_clip``). Nothing in the
generation or scoring pipeline imports this package; what a trainer shares with its adapter (model parts,
prompt and response formats, the delta loader) lives in the adapter's module, below both."""
