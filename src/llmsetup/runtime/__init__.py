"""Modules that run INSIDE a model's environment, started by that environment's Python.

Rules for everything in this folder:

- import only the standard library and the ML stack (torch, transformers, accelerate,
  bitsandbytes, tokenizers, safetensors, pydub, numpy); never typer, rich, pydantic or
  anything else of the host;
- work with transformers 4.38.1 (the book's pin) through the current 5.x;
- talk to the host with JSON lines on stdout (see ``_rt.py``), logs on stderr.

Each module is a script: ``python causal_lm.py ...``. Siblings are imported as plain
modules (``import _rt``) when run as a script and as package members when imported by tests.
"""
