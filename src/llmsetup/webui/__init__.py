"""text-generation-webui, the book's server for Llama-2: ``repo`` (the checkout at the pinned
commit, trimmed requirements, the model deployed into ``models/``), ``server`` (start it
and wait until it answers), ``api`` (its page and its OpenAI-compatible API).
"""
