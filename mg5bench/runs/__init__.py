"""Runs: the run store and what fills it, the stage between the adapter and scoring. ``spec`` says what to run
(``RunSpec``, ``GenerationConfig``), ``keys`` resolves it without loading the model into its generation key and run
folder (and moves a folder stored under an older key scheme), ``store`` reads and writes the folder (the lock,
validated resume with quarantine), ``runner`` generates what the store lacks, and ``seeds`` finds the training seeds
of a checkpoint.

May import: ``mg5bench.core``, ``mg5bench.tasks``, ``mg5bench.data``, the adapter contract (``adapters.base``) and the
catalog (to build an adapter by name); ``runner`` also calls scoring once the generations are stored. Reports read
the store through ``keys`` and ``store`` and never import ``runner``.
"""
