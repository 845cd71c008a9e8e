"""Model cards: the numbers the shipped checkpoints' README.md report, computed the way a user would compute them
(through ``mg5bench.api.run`` / ``score``: the same samples, seeds, store and metrics), plus what the cards add on
top (oracle accuracy per attribute and per VIST step, the caption-only comparison, a sample strip).

    python -m mg5bench.modelcards.reference CKPT --task vist --n 40 [--out F] [--card NAME]   # a MiniGPT-5 checkpoint
    python -m mg5bench.modelcards.t2i PIPELINE [--n 200]                                     # a text-to-image backbone
    python -m mg5bench.modelcards.baselines [--limit 200]                                    # divter-*, sd2-ft-*

A card is rewritten between its generated-section markers only: analysis written by hand around them is kept on
re-evaluation (``common.write_card_text``).

May import: anything of mg5bench (it sits on top, with the API); nothing imports it.
"""
