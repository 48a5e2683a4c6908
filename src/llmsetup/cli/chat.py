"""``llmsetup chat``: talk to a text model in the terminal."""

from __future__ import annotations

from typing import Annotated

import typer

from llmsetup.cli._context import state
from llmsetup.cli._options import (
    Bits4Opt,
    Bits8Opt,
    CpuOpt,
    DeviceOpt,
    DoubleQuantOpt,
    MaxMemoryOpt,
    MaxNewTokensOpt,
    PythonOpt,
    TargetArg,
    TrustRemoteCodeOpt,
    number_in,
)
from llmsetup.i18n import _


def chat_cmd(
    ctx: typer.Context,
    target: TargetArg,
    bits4: Bits4Opt = False,
    bits8: Bits8Opt = False,
    double_quant: DoubleQuantOpt = False,
    system: Annotated[str | None, typer.Option(
        "--system", metavar="TEXT", help=_("The system prompt (/system changes it later)."))] = None,
    max_new_tokens: MaxNewTokensOpt = None,
    temperature: Annotated[float, typer.Option(
        "--temperature", metavar="T", help=_("Sampling temperature; 0 answers greedily."),
        callback=number_in(0, 100))] = 0.7,
    top_p: Annotated[float, typer.Option(
        "--top-p", metavar="P", help=_("Nucleus sampling: keep the top P of probability."),
        callback=number_in(0, 1, low_open=True))] = 0.9,
    no_stream: Annotated[bool, typer.Option(
        "--no-stream", help=_("Print each answer whole instead of token by token."))] = False,
    device: DeviceOpt = "auto",
    cpu: CpuOpt = False,
    max_memory: MaxMemoryOpt = None,
    trust_remote_code: TrustRemoteCodeOpt = False,
    python: PythonOpt = None,
) -> None:
    """Chat with a text model in the terminal, or answer questions piped on stdin.

    Answers stream as they are generated and the conversation goes through the model's chat
    template. /help lists the commands; an empty line quits; Ctrl-C stops an answer.
    """
    from llmsetup.envs import python_for
    from llmsetup.host import causal_lm as lm

    app = state(ctx)
    resolved = app.target(target)
    opts = lm.LMOptions.from_flags(bits4=bits4, bits8=bits8, double_quant=double_quant,
                                   device=device, cpu=cpu, max_memory=max_memory,
                                   trust_remote_code=trust_remote_code,
                                   max_new_tokens=max_new_tokens)
    status = lm.chat(resolved, app.settings, python_for(resolved, app.settings, python), opts,
                     system=system, temperature=temperature, top_p=top_p,
                     stream=not no_stream)
    if status:
        raise typer.Exit(status)
