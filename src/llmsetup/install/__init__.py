"""An install: an ordered plan of steps, each able to describe itself (``--dry-run``), tell
whether it is done (resume) and run.

``plan`` (the plan, the step protocol, the options), ``steps`` (environment, requirements,
torch/CUDA check, download, verify), ``webui_route`` (the book's text-generation-webui),
``build`` (picks the route and assembles the plan).
"""
