"""The bundled recipes: every model of the book chapter, with the book's exact values."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmsetup.recipes import Catalog, bundled_dir, load_file

BOOK_GEMMA = ["torch==2.0.1", "transformers==4.38.1", "accelerate==0.27.2",
              "bitsandbytes==0.42.0", "trl==0.7.11", "peft==0.8.2"]
BOOK_WHISPER = ["torch==2.0.1", "transformers==4.38.1", "accelerate==0.28.0", "pydub==0.25.1"]
EXPECTED = {
    "demo", "llama-2-7b-chat", "chinese-llama-2-7b", "gemma-2b", "gemma-7b", "gemma-2b-it",
    "gemma-7b-it", "whisper-large-v3", "whisper-large-v2", "whisper-large", "whisper-medium",
    "whisper-medium.en", "whisper-small", "whisper-small.en", "whisper-base", "whisper-base.en",
    "whisper-tiny", "whisper-tiny.en",
}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog()


def test_every_book_model_has_a_valid_recipe(catalog):
    assert set(catalog.names()) == EXPECTED
    assert catalog.problems == []


def test_file_name_matches_recipe_name():
    for path in bundled_dir().glob("*.yaml"):
        assert load_file(path).name == path.stem


def test_gemma_2b_has_the_books_values(catalog):
    r = catalog.get("gemma-2b")
    assert r.repo_id == "alpindale/gemma-2b"
    assert r.env.name == "gemma" and r.env.python == "3.10"
    assert r.profiles["book"] == BOOK_GEMMA
    assert r.chat_template_fallback == "gemma"
    assert r.upstream and r.upstream.repo_id == "google/gemma-2b" and r.upstream.gated


def test_whisper_large_v3_has_the_books_values(catalog):
    r = catalog.get("whisper-large-v3")
    assert r.kind == "asr" and r.repo_id == "openai/whisper-large-v3"
    assert r.env.name == "whisper-large-v3" and r.env.python == "3.10"
    assert r.profiles["book"] == BOOK_WHISPER
    audio = r.smoke.audio
    assert (audio.chunk_length_s, audio.batch_size, audio.max_new_tokens,
            audio.return_timestamps) == (30, 16, 128, True)
    assert r.memory_gb()["fp16"] == 4


def test_llama_memory_is_the_books(catalog):
    r = catalog.get("llama-2-7b-chat")
    assert r.repo_id == "NousResearch/Llama-2-7b-chat-hf"
    assert r.memory_gb() == {"fp16": 13, "int8": 9, "int4": 5}
    assert r.webui and r.webui.commit == "1934cb6" and r.webui.requirements_cutoff == "tiktoken"
    assert catalog.get("chinese-llama-2-7b").repo_id == "LinkSoul/Chinese-Llama-2-7b"


def test_every_recipe_has_a_modern_profile_and_parameter_count(catalog):
    for r in catalog.all():
        assert "modern" in r.profiles, r.name
        assert r.params and r.params > 0, r.name
        assert r.architecture and "model_type" in r.architecture, r.name


def test_whisper_table_parameter_counts(catalog):
    sizes = {"tiny": 39e6, "base": 74e6, "small": 244e6, "medium": 769e6, "large": 1550e6}
    for size, params in sizes.items():
        assert catalog.get(f"whisper-{size}").params == params
        if size != "large":
            assert catalog.get(f"whisper-{size}.en").params == params


def test_user_recipe_overrides_bundled_one(tmp_path):
    text = (bundled_dir() / "gemma-2b.yaml").read_text()
    (tmp_path / "gemma-2b.yaml").write_text(text.replace("Gemma 2B base", "My own Gemma"))
    catalog = Catalog([tmp_path])
    assert catalog.get("gemma-2b").description.startswith("My own Gemma")
    assert next(r.description for r in catalog.all() if r.name == "gemma-2b").startswith("My own")


def test_unknown_recipe_suggests_close_names(catalog):
    from llmsetup.errors import NotFoundError

    with pytest.raises(NotFoundError) as err:
        catalog.get("gemma2b")
    assert "gemma-2b" in err.value.hint


def test_recipes_ship_inside_the_wheel(tmp_path):
    """The wheel carries the recipes (and their locks) as package data."""
    import subprocess
    import sys
    import zipfile

    root = Path(__file__).resolve().parent.parent
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(root)], check=True)
    wheel = next(tmp_path.glob("llmsetup-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for name in EXPECTED:
        assert f"llmsetup/_bundled_recipes/{name}.yaml" in names
    assert "llmsetup/schemas/verify-causal-lm.schema.json" in names  # docs/verify.md


def test_recipe_index_cache_follows_edits(tmp_path):
    """`list` reads a cached index; editing a recipe file must show at once."""
    import os

    cache = tmp_path / "cache"
    text = (bundled_dir() / "gemma-2b.yaml").read_text()
    user = tmp_path / "recipes"
    user.mkdir()
    (user / "gemma-2b.yaml").write_text(text.replace("Gemma 2B base", "First edit"))
    first = {r["name"]: r for r in Catalog([user], cache_dir=cache).index()}
    assert first["gemma-2b"]["description"].startswith("First edit")
    assert (cache / "recipes-index.en.json").is_file()
    path = user / "gemma-2b.yaml"
    path.write_text(text.replace("Gemma 2B base", "Second edit, longer"))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    second = {r["name"]: r for r in Catalog([user], cache_dir=cache).index()}
    assert second["gemma-2b"]["description"].startswith("Second edit")
    (user / "broken.yaml").write_text("name: [\n")
    catalog = Catalog([user], cache_dir=cache)
    catalog.index()
    assert any("broken.yaml" in m for m in catalog.problem_messages)
    again = Catalog([user], cache_dir=cache)
    again.index()  # from the cache now, with the same warning
    assert again.problem_messages == catalog.problem_messages
