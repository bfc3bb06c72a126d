"""The settings: sections, the flat `RAG_*` names that fill them, and their reference page."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from app.settings import SECTION_OF, SECTIONS, Settings
from app.settings_reference import reference_markdown

REPO = Path(__file__).resolve().parents[2]


def test_every_setting_is_in_one_section_and_described():
    fields = [name for section in SECTIONS.values() for name in section.model_fields]
    assert len(fields) == len(set(fields)) == len(SECTION_OF)
    undescribed = [name for section in SECTIONS.values() for name, info in section.model_fields.items()
                   if not (info.description or "").strip()]
    assert undescribed == []
    assert all(Settings.model_fields[name].description for name in SECTIONS)


def test_the_environment_fills_the_sections_by_the_flat_names(monkeypatch):
    monkeypatch.setenv("RAG_TOP_K", "7")
    monkeypatch.setenv("RAG_SIMILARITY_CUTOFF", "0.3")
    monkeypatch.setenv("RAG_CORS_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("RAG_NOT_A_SETTING", "whatever")  # unknown variables are left alone, as before
    settings = Settings(_env_file=None)
    assert settings.retrieval.top_k == 7 and settings.gate.similarity_cutoff == 0.3
    assert settings.access.cors_origins == ["https://a.example", "https://b.example"]
    assert settings.is_set("top_k") and not settings.is_set("fusion")


def test_arguments_win_over_the_environment_which_wins_over_dotenv(monkeypatch, tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("RAG_TOP_K=4\nRAG_MILVUS_URI=from_dotenv.db\nRAG_LLM_PORT=9090\n")
    monkeypatch.setenv("RAG_TOP_K", "6")
    settings = Settings(_env_file=dotenv, llm_port=7070)
    assert settings.retrieval.top_k == 6
    assert settings.storage.milvus_uri == "from_dotenv.db"
    assert settings.llm.llm_port == 7070
    assert settings.is_set("milvus_uri") and settings.is_set("llm_port")


def test_a_bad_value_names_its_section_and_field(monkeypatch):
    monkeypatch.setenv("RAG_TOP_K", "many")
    with pytest.raises(ValidationError, match="retrieval.top_k"):
        Settings(_env_file=None)


def test_an_unknown_argument_is_an_error_not_ignored():
    with pytest.raises(ValidationError, match="unknown setting 'top_kk'"):
        Settings(_env_file=None, top_kk=3)


def test_model_copy_takes_flat_names_and_leaves_the_original():
    settings = Settings(_env_file=None)
    changed = settings.model_copy(update={"top_k": 9, "milvus_uri": "other.db"})
    assert (changed.retrieval.top_k, changed.storage.milvus_uri) == (9, "other.db")
    assert settings.retrieval.top_k == 5 and settings.storage.milvus_uri == "milvus_data/course.db"
    assert changed.is_set("top_k") and changed.embedding is settings.embedding
    with pytest.raises(ValueError, match="unknown setting"):
        settings.model_copy(update={"nonsense": 1})


def test_chunk_overlap_must_be_smaller_than_the_chunk():
    with pytest.raises(ValidationError, match="chunk_overlap_tokens must be smaller"):
        Settings(_env_file=None, chunk_size_tokens=64, chunk_overlap_tokens=64)


def test_the_settings_reference_is_current():
    written = (REPO / "docs" / "SETTINGS.md").read_text()
    assert written == reference_markdown(), (
        "docs/SETTINGS.md is out of date: cd backend && python -m app.settings_reference > ../docs/SETTINGS.md")


def test_a_bad_value_is_explained_by_its_variable_and_a_secret_is_not_repeated(monkeypatch):
    from app.settings import explain

    monkeypatch.setenv("RAG_TOP_K", "many")
    monkeypatch.setenv("RAG_STUDENT_ACCESS", "closed")
    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None)
    said = explain(caught.value)
    assert "RAG_TOP_K='many': Input should be a valid integer" in said
    assert "RAG_STUDENT_ACCESS='closed': Input should be 'open' or 'code'" in said
    monkeypatch.delenv("RAG_TOP_K")
    monkeypatch.delenv("RAG_STUDENT_ACCESS")
    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None, llm_api_key=12345)
    assert explain(caught.value).startswith("RAG_LLM_API_KEY: ") and "12345" not in explain(caught.value)


def test_the_conversations_url_must_be_postgresql_and_its_password_is_never_repeated():
    from app.settings import explain

    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None, conversations_url="mysql://app:hunter2@db/course")
    said = explain(caught.value)
    assert said.startswith("RAG_CONVERSATIONS_URL: ") and "postgresql://" in said and "hunter2" not in said
    url = "postgresql://app:hunter2@db:5432/course"
    assert Settings(_env_file=None, conversations_url=url).storage.conversations_url.get_secret_value() == url
