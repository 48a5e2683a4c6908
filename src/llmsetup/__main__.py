"""``python -m llmsetup`` runs the command-line interface."""

from llmsetup.cli.entry import main

if __name__ == "__main__":
    main()
