"""llmsetup: install local LLMs and speech models in one command, prove they work,
and tell the truth about their speed and memory.

This package is imported by the host CLI. It must stay light: nothing here may import
torch or transformers (the code that does lives in ``llmsetup.runtime`` and runs inside
the model's own environment).
"""

__version__ = "0.1.0"
