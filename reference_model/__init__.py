"""MiniGPT-5 reference implementation (tiny CPU presets and the paper preset). Imports nothing
from mg5bench, so it can be used on its own."""
