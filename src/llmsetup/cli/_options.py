"""Reusable typed options, so that command signatures read like documentation."""

from __future__ import annotations

from typing import Annotated

import typer

JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print one JSON document on stdout and nothing else there.")
]
TargetArg = Annotated[
    str,
    typer.Argument(metavar="NAME|DIR",
                   help="A recipe name (see `llmsetup list`) or a local model folder."),
]
NameArg = Annotated[str, typer.Argument(metavar="NAME", help="A recipe name (see `llmsetup list`).")]
ProfileOpt = Annotated[
    str | None,
    typer.Option("--profile", help="Requirement profile: book (the book's pins) or modern.",
                 show_default="the recipe's default, usually book"),
]
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Show what would be done; change nothing on disk.")
]
Bits4Opt = Annotated[bool, typer.Option("--4bit", help="Load in 4-bit (NF4) with bitsandbytes.")]
Bits8Opt = Annotated[bool, typer.Option("--8bit", help="Load in 8-bit (LLM.int8) with bitsandbytes.")]
DeviceOpt = Annotated[
    str, typer.Option("--device", help="auto, cuda or cpu.", case_sensitive=False)
]
DoubleQuantOpt = Annotated[
    bool, typer.Option("--double-quant", help="With --4bit: quantize the quantization constants "
                       "too (saves about 0.37 bits per parameter).")
]
CpuOpt = Annotated[bool, typer.Option("--cpu", help="Run on the CPU (the same as --device cpu).")]
MaxMemoryOpt = Annotated[
    str | None,
    typer.Option("--max-memory", metavar="SPEC",
                 help="Memory per device for device_map=auto, e.g. 0=10GiB,cpu=30GiB."),
]
MaxNewTokensOpt = Annotated[
    int | None, typer.Option("--max-new-tokens", metavar="N", min=1,
                             help="Longest answer, in tokens.",
                             show_default="the recipe's smoke setting for verify, 512 for chat")
]
TrustRemoteCodeOpt = Annotated[
    bool, typer.Option("--trust-remote-code",
                       help="Run Python code shipped with the model (read it first).")
]
PythonOpt = Annotated[
    str | None,
    typer.Option("--python", metavar="PATH",
                 help="The interpreter of the model's environment.",
                 show_default="the environment `install` made, else this one"),
]
SpeechEngineOpt = Annotated[
    str, typer.Option("--engine", metavar="transformers|ctranslate2", case_sensitive=False,
                      help="Speech models: transformers (the book's pipeline) or ctranslate2 "
                      "(faster-whisper: several times faster on a CPU; the model is converted "
                      "once and cached beside it; `llmsetup install NAME --engine ctranslate2` "
                      "adds it).")
]
BeamsOpt = Annotated[
    int | None, typer.Option("--beams", metavar="N", min=1,
                             help="Speech models: beam search with N beams. Beams can fix a "
                             "misheard word (fewer errors on hard audio) at about N times the "
                             "decoder's work and memory.",
                             show_default="1: greedy, as the book's pipeline")
]
