"""The settings reference (docs/SETTINGS.md), written from the settings themselves so that it
cannot drift from them: `python -m app.settings_reference > ../docs/SETTINGS.md`."""

from __future__ import annotations

from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from app.settings import SECTIONS, Settings


def env_name(field: str) -> str:
    return f"RAG_{field.upper()}"


def default_text(info: FieldInfo) -> str:
    """The default as a user would write it in `.env`; long texts are only named."""
    if info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
    elif info.default is PydanticUndefined or info.default is None:
        return "unset"
    else:
        value = info.default
    if isinstance(value, bool):
        return "true" if value else "false"
    if value == [] or value == "":
        return "empty"
    text = str(value)
    return "(a paragraph; see settings.py)" if len(text) > 60 else f"`{text}`"


def reference_markdown() -> str:
    lines = ["# Settings", "",
             "Every setting, by section, as `backend/app/settings.py` declares it (this file is written",
             "from it: `cd backend && python -m app.settings_reference > ../docs/SETTINGS.md`). Set any",
             "of them in a `.env` file at the project root or as an environment variable; in code",
             "the section is the attribute (`settings.gate.similarity_cutoff` is `RAG_SIMILARITY_CUTOFF`).",
             ""]
    for name, section in SECTIONS.items():
        described = Settings.model_fields[name].description
        lines += [f"## {name}", "", described or "", "", "| variable | default | meaning |", "| --- | --- | --- |"]
        for field, info in section.model_fields.items():
            meaning = " ".join((info.description or "").split()).replace("|", "\\|")
            lines.append(f"| `{env_name(field)}` | {default_text(info)} | {meaning} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(reference_markdown(), end="")
