"""Foundations every stage of the flow uses: the one-line errors and notes (``errors``, ``notes``), the shared
limits and range checks (``limits``), Markdown and CSV escaping (``escaping``), every content hash and the per-file
hash cache (``hashing``), the lazy name registry (``registry``), devices and machine facts (``devices``),
safetensors checks before loading (``checkpoints``), per-sample seeds (``seeding``) and the sample type every task,
adapter and metric speaks (``sample``).

May import: the standard library (torch only inside functions, platformdirs for the cache folder) and other
``mg5bench.core`` modules; nothing else of mg5bench. Importing any of it stays cheap (the CLI's ``--help`` does).
"""
