"""The recipe schema's name rules and default sources, without pydantic.

Kept apart from :mod:`llmsetup.recipes.schema` so that commands which only need these
(``llmsetup download ORG/REPO``) start without building the schema.
"""

DEFAULT_SOURCES = ["hf-mirror", "aliendao", "modelscope", "hf"]
NAME_RE = r"^[a-z0-9][a-z0-9._-]*$"
REPO_RE = r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$"
