"""Reusable typed options, so that command signatures read like documentation.

Values are checked here, where they are parsed (click callbacks): a value that cannot work
stops the command at once with exit 2 and one line naming the option, the value and what is
accepted, before any environment, download or model is touched. The checks themselves are
in :mod:`llmsetup.values`, shared with the config file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from llmsetup import values
from llmsetup.cli._context import state
from llmsetup.i18n import _

# host.causal_lm.DEVICES, kept equal by a test: importing it here would cost every start.
DEVICES = ("auto", "cuda", "cpu")
# host.asr.ENGINES, kept equal by the same test.
SPEECH_ENGINES = ("transformers", "ctranslate2")


def _bad(param: typer.CallbackParam, value: Any, expected: str) -> NoReturn:
    raise typer.BadParameter(
        _("{value!r}: expected {expected}").format(value=str(value), expected=expected),
        param=param)


def _either(choices: tuple[str, ...]) -> str:
    """``a, b or c`` (the choices are words of the command line, kept as they are)."""
    return _("{choices} or {last}").format(choices=", ".join(choices[:-1]), last=choices[-1])


def check_device(param: typer.CallbackParam, value: str | None) -> str | None:
    if value is not None and value.lower() not in DEVICES:
        _bad(param, value, _either(DEVICES))
    return value.lower() if value is not None else None


def check_speech_engine(param: typer.CallbackParam, value: str | None) -> str | None:
    if value is not None and value.lower() not in SPEECH_ENGINES:
        _bad(param, value, _either(SPEECH_ENGINES))
    return value.lower() if value is not None else None


def check_url(param: typer.CallbackParam, value: str | None) -> str | None:
    problem = values.http_url_problem(value) if value is not None else None
    if problem:
        _bad(param, value, problem)
    return value


def check_max_memory(param: typer.CallbackParam, value: str | None) -> str | None:
    problem = values.max_memory_problem(value) if value is not None else None
    if problem:
        _bad(param, value, problem)
    return value


def check_interpreter(param: typer.CallbackParam, value: str | None) -> str | None:
    """An executable file (the Python of a model's environment)."""
    if value is None:
        return None
    path = Path(value).expanduser()
    if not path.exists():
        _bad(param, value, _("the path of a Python interpreter (there is no such file)"))
    if not path.is_file() or not os.access(path, os.X_OK):
        _bad(param, value, _("an executable Python interpreter (this is not one)"))
    return value


def check_folders(param: typer.CallbackParam, value: list[Path] | None) -> list[Path] | None:
    """Folders that exist (``--recipes-dir``)."""
    for path in value or []:
        problem = values.existing_folder_problem(path)
        if problem:
            _bad(param, path, problem)
    return value


def check_new_folder(param: typer.CallbackParam, value: Path | None) -> Path | None:
    """A folder that exists or can be made (``--models-dir``)."""
    problem = values.folder_problem(value.expanduser()) if value is not None else None
    if problem:
        _bad(param, value, problem)
    return value


def _input_file_problem(path: Path) -> str | None:
    if not path.exists():
        return _("an existing file (there is no such file)")
    if not path.is_file():
        return _("a regular file (this is a folder or a device)")
    return None


def check_input_files(param: typer.CallbackParam, value: list[str] | None) -> list[str] | None:
    """Files to read (recordings): each there, and a regular file (not /dev/null)."""
    for item in value or []:
        problem = _input_file_problem(Path(item).expanduser())
        if problem:
            _bad(param, item, problem)
    return value


def check_input_file(param: typer.CallbackParam, value: Path | None) -> Path | None:
    problem = _input_file_problem(value.expanduser()) if value is not None else None
    if problem:
        _bad(param, value, problem)
    return value


def check_overrides(param: typer.CallbackParam, value: list[str] | None) -> list[str] | None:
    for item in value or []:
        problem = values.override_problem(item)
        if problem:
            _bad(param, item, problem)
    return value


def number_in(low: float, high: float, *, low_open: bool = False):
    """A callback for a finite number in ``[low, high]`` (``(low, high]``): no nan, no inf."""

    def check(param: typer.CallbackParam, value: float | None) -> float | None:
        problem = (values.number_problem(value, low=low, high=high, low_open=low_open)
                   if value is not None else None)
        if problem:
            _bad(param, value, problem)
        return value

    return check


def _json_mode(ctx: typer.Context, value: bool) -> bool:
    # Eager, so that it is known before any other option is checked: a failure of the
    # command line is then a JSON document too (cli/_errors.py).
    if value:
        state(ctx).json_mode = True
    return value


JsonOpt = Annotated[
    bool, typer.Option("--json", help=_("Print one JSON document on stdout and nothing else there."),
                       callback=_json_mode, is_eager=True)
]
TargetArg = Annotated[
    str,
    typer.Argument(metavar="NAME|DIR",
                   help=_("A recipe name (see `llmsetup list`) or a local model folder.")),
]
NameArg = Annotated[str, typer.Argument(metavar="NAME", help=_("A recipe name (see `llmsetup list`)."))]
ProfileOpt = Annotated[
    str | None,
    typer.Option("--profile", help=_("Requirement profile: book (the book's pins) or modern."),
                 show_default=_("the recipe's default, usually book")),
]
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help=_("Show what would be done; change nothing on disk."))
]
Bits4Opt = Annotated[bool, typer.Option("--4bit", help=_("Load in 4-bit (NF4) with bitsandbytes."))]
Bits8Opt = Annotated[bool, typer.Option("--8bit", help=_("Load in 8-bit (LLM.int8) with bitsandbytes."))]
DeviceOpt = Annotated[
    str, typer.Option("--device", help=_("auto, cuda or cpu."), case_sensitive=False,
                      callback=check_device)
]
DoubleQuantOpt = Annotated[
    bool, typer.Option("--double-quant", help=_("With --4bit: quantize the quantization constants "
                       "too (saves about 0.37 bits per parameter)."))
]
CpuOpt = Annotated[bool, typer.Option("--cpu", help=_("Run on the CPU (the same as --device cpu)."))]
MaxMemoryOpt = Annotated[
    str | None,
    typer.Option("--max-memory", metavar="SPEC",
                 help=_("Memory per device for device_map=auto, e.g. 0=10GiB,cpu=30GiB."),
                 callback=check_max_memory),
]
MaxNewTokensOpt = Annotated[
    int | None, typer.Option("--max-new-tokens", metavar="N", min=1,
                             help=_("Longest answer, in tokens."),
                             show_default=_("the recipe's smoke setting for verify, 512 for chat"))
]
TrustRemoteCodeOpt = Annotated[
    bool, typer.Option("--trust-remote-code",
                       help=_("Run Python code shipped with the model (read it first)."))
]
PythonOpt = Annotated[
    str | None,
    typer.Option("--python", metavar="PATH",
                 help=_("The interpreter of the model's environment."), callback=check_interpreter,
                 show_default=_("the environment `install` made, else this one")),
]
SpeechEngineOpt = Annotated[
    str, typer.Option("--engine", metavar="transformers|ctranslate2",
                      callback=check_speech_engine,
                      help=_("Speech models: transformers (the book's pipeline) or ctranslate2 "
                      "(faster-whisper: several times faster on a CPU; the model is converted "
                      "once and cached beside it; `llmsetup install NAME --engine ctranslate2` "
                      "adds it)."))
]
BeamsOpt = Annotated[
    int | None, typer.Option("--beams", metavar="N", min=1,
                             help=_("Speech models: beam search with N beams. Beams can fix a "
                             "misheard word (fewer errors on hard audio) at about N times the "
                             "decoder's work and memory."),
                             show_default=_("1: greedy, as the book's pipeline"))
]
