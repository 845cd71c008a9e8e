"""Data formats and the synthetic world: readers and writers of the three real formats (``cc3m``, ``vist``,
``mmdialog``; shared reading helpers in ``io``), the VIST story-in-sequence converter (``vist_sis``), the synthetic
world (``world_content``: what it holds; ``world``: writing, verifying and caching it; ``scenes``: drawing scenes;
``world_checks``: its sanity figures), the scene oracle that parses images back into objects (``oracle``) and the
contamination check between splits (``overlap``).

May import: ``mg5bench.core``; the overlap check and the VIST converter also use ``mg5bench.tasks`` (task splits,
the story length) and the overlap check the text metrics' tokenizer. Tasks read their records through this package; it
knows nothing of adapters, runs or scoring.
"""
