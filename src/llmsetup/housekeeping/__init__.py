"""What llmsetup put on disk, how much it takes, and removing it (``list`` sizes, ``rm``,
``prune``).

- :mod:`.records`: what ``install`` recorded for each recipe, read back;
- :mod:`.disk`: apparent sizes, and the one careful way to delete;
- :mod:`.usage`: disk per installed recipe, shared environments counted once;
- :mod:`.remove`: ``rm``'s plan and its execution;
- :mod:`.prune`: partial downloads, stale locks, unrecorded environments, old logs.
"""
