"""mg5bench: evaluation and benchmarking for interleaved image-and-text generation (MiniGPT-5).

Importing the package must stay cheap (no torch): the CLI's ``--help`` relies on it.
"""

__version__ = "0.1.0"
