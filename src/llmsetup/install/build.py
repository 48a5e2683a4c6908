"""The one place that picks an install's route and assembles its steps.

Routes: the model's own environment (the default), ``--ui webui`` (the book's
text-generation-webui, :mod:`llmsetup.install.webui_route`) and ``--engine vllm`` (vLLM's
server, :mod:`llmsetup.install.engine_route`); ``--engine ctranslate2`` adds a step to the
model's own route (faster-whisper, for speech models). The plan never imports the
steps, and the steps never import a route: only this module knows them all.
"""

from __future__ import annotations

from llmsetup.envs import choose_backend, make_backend
from llmsetup.errors import UsageError
from llmsetup.i18n import _
from llmsetup.install import engine_route, webui_route
from llmsetup.install.plan import InstallOptions, Plan
from llmsetup.install.steps import (
    CudaCheckStep,
    EngineStep,
    EnvStep,
    RequirementsStep,
    add_download,
    add_verify,
)
from llmsetup.settings import Settings


def build_plan(target, settings: Settings, options: InstallOptions) -> Plan:
    """The install plan for ``target`` with ``options``."""
    plan = Plan(target, settings, options)
    if options.ui == "webui" and options.engine == "vllm":
        raise UsageError(_("--ui webui and --engine vllm are two different servers: choose "
                           "one"))
    if options.ui and options.engine == "ctranslate2":
        raise UsageError(_("--engine ctranslate2 is for speech models; --ui webui serves "
                           "text models"))
    if options.engine == "vllm":
        engine_route.add_steps(plan)
    elif options.ui == "webui":
        webui_route.add_steps(plan)
    else:
        _model_route(plan)
    return plan


def _model_route(plan: Plan) -> None:
    """Environment, requirements, torch/CUDA check, download, verify: the model's own env."""
    recipe, options = plan.recipe, plan.options
    profile = options.profile or recipe.default_profile
    if profile not in recipe.profiles:
        raise UsageError(_("{name} has no profile {profile}").format(name=recipe.name,
                                                                      profile=repr(profile)),
                         hint=_("Profiles: {profiles}").format(
                             profiles=", ".join(recipe.profiles)))
    backend_name = choose_backend(options.env_backend, recipe.env.backend)
    python_version = options.python or recipe.python_version(profile)
    backend = make_backend(backend_name, recipe.env_name(profile), python_version,
                           plan.settings, python_mirror=options.python_mirror)
    plan.steps.append(EnvStep(plan, backend))
    pins = recipe.profiles[profile]
    requirements = None
    if pins:
        lock = recipe.lock_path(profile) if options.use_lock else None
        requirements = RequirementsStep(plan, backend, profile, pins, lock)
        plan.steps.append(requirements)
    if options.engine == "ctranslate2":
        plan.steps.append(EngineStep(plan, backend, options.engine, profile,
                                     recipe.lock_path(profile) if options.use_lock else None))
    if options.cuda_check:
        plan.steps.append(CudaCheckStep(plan, backend, requirements))
    add_download(plan, backend)
    add_verify(plan, backend)
