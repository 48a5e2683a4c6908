"""The host side of each runtime module, named like it: this side starts
``runtime/X.py`` in the model's environment and reads its JSON-line events.

``runner`` (the protocol), ``causal_lm`` (verify and chat), ``asr`` (Whisper verify and
transcribe), ``bench``, ``verify`` (what install runs last, for any kind), ``subtitles``
(transcript formats).
"""
