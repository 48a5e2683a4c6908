"""The command-line interface: thin Typer commands that call one core function and render.

Command modules import typer at the top and everything else inside their functions, so that
``llmsetup --help`` stays fast and never loads the heavy parts (and never torch).
"""
