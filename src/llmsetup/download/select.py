"""Which files of a listing to fetch: globs, and one weight format instead of three.

- ``--include`` globs (or the recipe's ``download.include``) keep only matching paths;
  ``--exclude`` globs and the recipe's ``download.exclude`` both apply. Globs match the
  whole path with :func:`fnmatch.fnmatch`, so ``*`` crosses folders (``*.gguf`` matches
  ``q4/model.gguf``), as in huggingface_hub's allow/ignore patterns.
- When safetensors weights are present, the same weights in other formats are duplicates
  that cost gigabytes: PyTorch pickles (``.bin``, ``.pt``, ``.pth``, ``.ckpt``), Flax
  (``.msgpack``) and TensorFlow (``.h5``), with their ``*.index.json``, are skipped unless
  ``--all-formats``. Safetensors also loads without running pickled code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import PurePosixPath

from llmsetup.download.messages import Message
from llmsetup.download.sources.base import RemoteFile
from llmsetup.i18n import N_

_OTHER_FORMAT = Message(N_("safetensors present (--all-formats fetches it)"))
_OTHER_WEIGHTS = re.compile(r"\.(bin|pt|pth|ckpt|msgpack|h5)(\.index\.json)?$")


@dataclass
class Selection:
    files: list[RemoteFile]
    #: (path, why); why is an English Message (``messages.shown`` translates it)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def is_other_weight(path: str) -> bool:
    """A weight file (or its index) in a format that safetensors makes redundant."""
    return bool(_OTHER_WEIGHTS.search(PurePosixPath(path).name))


def select_files(files: list[RemoteFile], include: list[str], exclude: list[str],
                 all_formats: bool = False) -> Selection:
    """Apply the globs, then prefer safetensors (see the module docstring)."""
    chosen: list[RemoteFile] = []
    skipped: list[tuple[str, str]] = []
    for f in files:
        if include and not any(fnmatch(f.path, g) for g in include):
            skipped.append((f.path, Message(N_("not matched by --include"))))
        elif any(fnmatch(f.path, g) for g in exclude):
            skipped.append((f.path, Message(N_("excluded"))))
        else:
            chosen.append(f)
    if not all_formats and any(f.path.endswith(".safetensors") for f in chosen):
        kept = []
        for f in chosen:
            if is_other_weight(f.path):
                skipped.append((f.path, _OTHER_FORMAT))
            else:
                kept.append(f)
        chosen = kept
    return Selection(chosen, skipped)
