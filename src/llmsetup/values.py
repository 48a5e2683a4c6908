"""Checks of values people type: URLs, memory sizes, numbers, folders, model overrides.

Each ``*_problem`` function returns None for a good value, else what was expected (one
phrase in the user's language, for a message that names the option and the value: it reads
after "expected", as in ``--endpoint 'x': expected an http:// or https:// URL``). The
command line (``cli/_options.py``) and the config file's schema (``config_schema.py``) both
use them, so that a value means the same wherever it is written. Standard library only: the CLI's
start-up must not pay for them.
"""

from __future__ import annotations

import math
import re
from urllib.parse import urlsplit

from llmsetup.i18n import N_, _

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*$", re.IGNORECASE)
_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}
# One device's share for device_map=auto: below 100 MiB nothing loads; above 64 TiB no
# machine has it (a typo of the unit, or of the number).
MIN_DEVICE_MEMORY = 100 * 2**20
MAX_DEVICE_MEMORY = 64 * 2**40
MAX_MEMORY_ACCEPTED = N_("DEVICE=SIZE pairs separated by commas, e.g. 0=10GiB,cpu=30GiB "
                         "(DEVICE: a GPU index, cpu, disk or mps; SIZE from 100MiB to 64TiB)")


def http_url_problem(value: str) -> str | None:
    """An ``http://`` or ``https://`` URL with a host (and a valid port)."""
    try:
        parts = urlsplit(value.strip())
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        return _("a valid http:// or https:// URL ({error})").format(error=exc)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return _("an http:// or https:// URL with a host, e.g. https://hf-mirror.com")
    return None


def size_bytes(text: str) -> int | None:
    """``10GiB`` -> bytes (accelerate's units, and plain bytes); None if unreadable."""
    match = _SIZE.match(text)
    if not match:
        return None
    return int(float(match.group(1)) * _UNITS[(match.group(2) or "B").upper()])


def max_memory_problem(spec: str) -> str | None:
    """``0=10GiB,cpu=30GiB``: each device once, each size within reason."""
    seen = set()
    for part in spec.split(","):
        device, sep, size = (p.strip() for p in part.partition("="))
        if not sep or not (device.isdigit() or device in ("cpu", "disk", "mps")) \
                or device in seen:
            return _(MAX_MEMORY_ACCEPTED)
        seen.add(device)
        amount = size_bytes(size)
        if amount is None or not MIN_DEVICE_MEMORY <= amount <= MAX_DEVICE_MEMORY:
            return _(MAX_MEMORY_ACCEPTED)
    return None


def number_problem(value: float, *, low: float, high: float, low_open: bool = False) -> str | None:
    """A finite number in ``[low, high]`` (``(low, high]`` with ``low_open``)."""
    bracket = "(" if low_open else "["
    if not math.isfinite(value) or value > high or value < low or (low_open and value == low):
        return _("a number in {range}").format(range=f"{bracket}{low:g}, {high:g}]")
    return None


# Config keys that count things or give a size: a whole number of at least 1.
_COUNT_KEY = re.compile(r"^(num_\w+|n_\w+|\w+_size|\w+_heads|\w+_layers|\w+_dim|head_dim|"
                        r"\w+_positions|\w+_position_embeddings|\w+_length|vocab_size)$")


def override_problem(item: str) -> str | None:
    """``KEY=VALUE`` for a model config: sizes and counts whole and positive, numbers finite
    and not negative."""
    import json

    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key.isidentifier():
        return _("KEY=VALUE with KEY a config field, e.g. num_hidden_layers=4")
    try:
        value = json.loads(raw)
    except ValueError:
        return None  # a string (hidden_act=gelu): the model's own config checks it
    if isinstance(value, bool) or not isinstance(value, (int, float)) or key.endswith("_id"):
        return None  # token ids may be -1
    if _COUNT_KEY.match(key) and (not isinstance(value, int) or value < 1):
        return _("a whole number of at least 1 for {key}").format(key=key)
    if not math.isfinite(value) or value < 0:
        return _("a finite number, not negative, for {key}").format(key=key)
    return None


def existing_folder_problem(path) -> str | None:
    """A folder that is there (``--recipes-dir``, ``LLMSETUP_RECIPES_PATH``): what is wrong."""
    from pathlib import Path

    path = Path(path).expanduser()
    if path.is_dir():
        return None
    return (_("an existing folder (this is a file)") if path.exists()
            else _("an existing folder (there is no such folder)"))


def folder_problem(path) -> str | None:
    """A folder that is there or can be made: no file where it, or a parent of it, would be."""
    from pathlib import Path

    for candidate in (Path(path), *Path(path).parents):
        if candidate.exists():
            if candidate.is_dir():
                return None
            if candidate == Path(path):
                return _("a folder")
            return _("a folder ({path} is a file)").format(path=candidate)
    return None
