"""Templates: per language and variant, sandboxed, strict about variables."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from hub.care.templates import TemplateError, Templates, contact_context, given_name
from hub.inbox.model import Contact, Identity
from hub.settings import load_settings
from tests.example_config import EXAMPLE


def write(folder: Path, files: dict[str, str]) -> Templates:
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return Templates.load(folder)


def contact(**fields: object) -> Contact:
    at = "2026-01-01T00:00:00Z"
    return Contact.model_validate({"created_at": at, "updated_at": at, **fields})


def test_most_specific_file_wins_then_default_language(tmp_path: Path) -> None:
    templates = write(
        tmp_path,
        {
            "greeting.vi.txt": "Chào {{ contact.given_name }}, cảm ơn anh/chị đã liên hệ.",
            "greeting.vi.sms.txt": "Chao {{ contact.given_name }}",
            "greeting.en.txt": "Hello {{ contact.given_name }}",
        },
    )
    binh = contact_context(contact(name="Nguyễn Văn Bình", language="vi-VN"), default_language="vi")
    assert templates.render("greeting", {"contact": binh}, language="vi").text.startswith(
        "Chào Bình,"
    )
    sms = templates.render("greeting", {"contact": binh}, language="vi", variants=("twilio", "sms"))
    assert sms.text == "Chao Bình"
    john = contact_context(contact(name="John Smith", language="en"), default_language="vi")
    english = templates.render("greeting", {"contact": john}, language="en", variants=["sms"])
    assert english.text == "Hello John"
    # No French template: the default language's.
    assert templates.render("greeting", {"contact": binh}, language="fr").text.startswith("Chào")


def test_subject_line_for_email(tmp_path: Path) -> None:
    templates = write(
        tmp_path,
        {"birthday.en.email.txt": "Subject: Happy birthday, {{ contact.given_name }}!\n\nWishes."},
    )
    templates.default_language = "en"
    rendered = templates.render(
        "birthday", {"contact": {"given_name": "An"}}, language="en", variants=["email"]
    )
    assert rendered.subject == "Happy birthday, An!"
    assert rendered.text == "Wishes."


def test_unknown_variable_fails_the_startup_check_naming_the_file(tmp_path: Path) -> None:
    templates = write(tmp_path, {"survey.vi.txt": "Đánh giá: {{ survey_link }}"})
    with pytest.raises(TemplateError, match=r"survey\.vi\.txt: unknown variable survey_link"):
        templates.require("survey", offered=["survey_url"])
    templates.require("survey", offered=["survey_link"])  # offered: fine


def test_misspelt_attribute_fails_at_startup_not_at_send_time(tmp_path: Path) -> None:
    templates = write(tmp_path, {"greeting.vi.txt": "Chào {{ contact.nmae }}"})
    with pytest.raises(TemplateError, match=r"greeting\.vi\.txt: .*nmae"):
        templates.require("greeting", offered=[])


def test_free_form_attributes_pass_the_check_and_fail_clearly_when_missing(
    tmp_path: Path,
) -> None:
    templates = write(tmp_path, {"promo.vi.txt": "Cửa hàng {{ contact.attributes.city }}"})
    templates.require("promo", offered=[])
    context = {"contact": contact_context(contact(name="An"), default_language="vi")}
    with pytest.raises(TemplateError, match="city"):
        templates.render("promo", context, language="vi")


def test_missing_template_and_syntax_errors_are_named(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match=r"template 'away' is missing: add away\.vi\.txt"):
        write(tmp_path, {}).require("away", offered=[])
    with pytest.raises(TemplateError, match=r"bad\.vi\.txt, line 1"):
        write(tmp_path, {"bad.vi.txt": "{{ contact.name "})


def test_badly_named_files_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="is not a language code"):
        write(tmp_path, {"greeting.vietnamese.txt": "x"})
    (tmp_path / "greeting.vietnamese.txt").unlink()
    with pytest.raises(TemplateError, match=r"is named <name>\.<language>"):
        write(tmp_path, {"greeting.txt": "x"})


def test_the_sandbox_keeps_templates_away_from_python_internals(tmp_path: Path) -> None:
    templates = write(
        tmp_path, {"evil.vi.txt": "{{ contact.__class__.__mro__[1].__subclasses__() }}"}
    )
    with pytest.raises(TemplateError):
        templates.render("evil", {"contact": {"name": "x"}}, language="vi")


def test_contact_context_holds_plain_values() -> None:
    someone = contact(
        name="Trần Thị Mai",
        birthday=date(1995, 3, 8),
        identities=[
            Identity(channel="phone", address="+84901234567"),
            Identity(channel="email", address="mai@example.com"),
        ],
        attributes={"city": "Huế"},
    )
    context = contact_context(someone, default_language="vi")
    assert context["given_name"] == "Mai"
    assert context["phone"] == "+84901234567"
    assert context["email"] == "mai@example.com"
    assert context["attributes"] == {"city": "Huế"}
    assert given_name("John Smith", "en") == "John"


def test_campaign_text_compiles_with_the_same_rules() -> None:
    templates = Templates()
    template = templates.compile("Ưu đãi cho {{ contact.given_name }}: {{ offer }}", "campaign c1")
    template.check(["offer"])
    with pytest.raises(TemplateError, match="campaign c1: unknown variable offer"):
        template.check([])


def test_example_config_documents_the_templates_section() -> None:
    settings = load_settings(EXAMPLE)
    assert settings.templates.default_language == "vi"
    assert settings.templates.folder == Path("config/templates")
