"""Message templates: care messages and campaigns, per language and channel.

Templates are files in `config/templates/` named

    <name>.<language>.txt            e.g. greeting.vi.txt
    <name>.<language>.<variant>.txt  e.g. greeting.vi.sms.txt (short, for SMS)

A variant is a channel family (`email`, `telegram`, ...) or a consent key
(`sms`); the most specific file that exists wins, then the plain one, then the
same in the default language. A template for e-mail may start with a
`Subject: ...` line followed by a blank line.

They are Jinja2 templates rendered in the *sandboxed* environment (an
administrator or marketer writes them; they must not reach Python internals)
with `StrictUndefined`: a variable that does not exist is an error, never an
empty string in a customer's message. Every template is checked when the hub
starts: the names it uses must be among the variables its use offers, and a
render against a sample context must succeed, so a typo such as
`contact.nmae` stops the start-up with the file and line instead of failing at
send time. Free-form contact attributes cannot be known in advance; write
`{{ contact.attributes.city | default("") }}` where one may be missing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import meta
from jinja2.runtime import new_context
from jinja2.sandbox import SandboxedEnvironment

from hub.inbox.model import Contact

SUFFIX = ".txt"
NAME = re.compile(r"^[a-z0-9_-]+$")
LANGUAGE = re.compile(r"^[a-z]{2,3}$")
SUBJECT = re.compile(r"\ASubject:[ \t]*(?P<subject>[^\n]*)\n\n?", re.IGNORECASE)

# What every template may use; a use adds its own (`survey_url`, `campaign`...).
BASE_VARIABLES = frozenset({"contact", "company", "now"})


class TemplateError(ValueError):
    """A template that cannot be used; the message names the file or template."""


@dataclass(frozen=True)
class Rendered:
    text: str
    subject: str = ""


def environment() -> SandboxedEnvironment:
    return SandboxedEnvironment(
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # plain text messages; e-mail HTML is built elsewhere
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@lru_cache(maxsize=256)
def language_of(value: str | None) -> str | None:
    """`vi-VN`, `vi_VN`, `VI` -> `vi`; None for nothing usable. (Cached: asked
    for every message, of the same few values.)"""
    if not value:
        return None
    primary = re.split(r"[-_]", value.strip().lower(), maxsplit=1)[0]
    return primary if LANGUAGE.match(primary) else None


def given_name(name: str, language: str | None) -> str:
    """The name to greet someone by: Vietnamese names put the given name last
    ("Nguyễn Văn Bình" -> "Bình"); most others put it first."""
    words = name.split()
    if not words:
        return ""
    return words[-1] if language == "vi" else words[0]


@dataclass(frozen=True, slots=True)
class ContactValues:
    """A contact as a message to them needs it, as plain values: what the
    template's `contact` variable is made of, `phone` and `email` being the
    first address of each kind ("" if none). Read straight from the store by
    callers that build no `Contact` model (a campaign's sends), or `of` one."""

    id: str
    name: str
    language: str | None
    timezone: str | None
    birthday: date | None
    tags: list[str]
    attributes: dict[str, Any]
    phone: str
    email: str

    @classmethod
    def from_contact(cls, contact: Contact, **extra: Any) -> Any:
        """`cls` for `contact`; `extra`: the fields a subclass adds."""
        addresses: dict[str, str] = {}
        for identity in contact.identities:
            addresses.setdefault(identity.channel, identity.address)
        return cls(
            contact.id,
            contact.name,
            contact.language,
            contact.timezone,
            contact.birthday,
            contact.tags,
            contact.attributes,
            addresses.get("phone", ""),
            addresses.get("email", ""),
            **extra,
        )


def contact_context(contact: Contact, *, default_language: str) -> dict[str, Any]:
    """The `contact` variable: plain values, never the model itself (the sandbox
    would let a template call its methods)."""
    return contact_variables(ContactValues.from_contact(contact), default_language=default_language)


def contact_variables(values: ContactValues, *, default_language: str) -> dict[str, Any]:
    """The `contact` variable from a contact's values."""
    language = language_of(values.language) or default_language
    return {
        "id": values.id,
        "name": values.name,
        "given_name": given_name(values.name, language),
        "language": language,
        "timezone": values.timezone or "",
        "birthday": values.birthday,
        "tags": list(values.tags),
        "attributes": dict(values.attributes),
        "phone": values.phone,
        "email": values.email,
    }


class _SampleAttributes(dict[str, Any]):
    """Any attribute a template asks for exists in the start-up check."""

    def __missing__(self, key: str) -> str:
        return f"<{key}>"


def sample_context(variables: Iterable[str]) -> dict[str, Any]:
    """A context with every offered variable, for the start-up render check.
    Use-specific variables are sample strings unless a richer sample is given."""
    context: dict[str, Any] = {name: f"<{name}>" for name in variables}
    context["contact"] = {
        "id": "sample",
        "name": "Nguyễn Văn Bình",
        "given_name": "Bình",
        "language": "vi",
        "timezone": "Asia/Ho_Chi_Minh",
        "birthday": date(1990, 1, 1),
        "tags": ["sample"],
        "attributes": _SampleAttributes(),
        "phone": "+84901234567",
        "email": "binh@example.com",
    }
    if "conversation" in context:  # the keys of `hub.care.messages.conversation_context`
        context["conversation"] = {
            "id": "sample",
            "subject": "<subject>",
            "channel": "<channel>",
            "account": "<account>",
        }
    context["company"] = {"name": "<company>"}
    context["now"] = date(2026, 1, 1)
    return context


class Template:
    """One compiled template source (a file, or a campaign's text)."""

    def __init__(self, env: SandboxedEnvironment, source: str, label: str) -> None:
        self.label = label
        try:
            parsed = env.parse(source)
            self.variables = frozenset(meta.find_undeclared_variables(parsed))
            self._template = env.from_string(source)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(f"{label}, line {exc.lineno}: {exc.message}") from exc
        # Jinja's globals (range, dict, ...) as one plain dict, made once: its
        # `render` reads them from a ChainMap twice per call (a merge and a set
        # of names), which cost more than the render itself in a campaign's sends.
        self._globals = dict(self._template.globals)

    def check(self, offered: Iterable[str]) -> None:
        """Fail naming the template if it uses a variable its use does not offer,
        or if rendering a sample context fails (a misspelt attribute)."""
        offered = frozenset(offered) | BASE_VARIABLES
        unknown = sorted(self.variables - offered)
        if unknown:
            raise TemplateError(
                f"{self.label}: unknown variable {', '.join(unknown)} "
                f"(offered here: {', '.join(sorted(offered))})"
            )
        self.render(sample_context(offered))

    def render(self, context: Mapping[str, Any]) -> Rendered:
        template = self._template
        try:
            # `Template.render` without its per-call merge of the globals (see
            # __init__); the context is a fresh dict, so the template may share it.
            scope = new_context(
                template.environment,
                template.name,
                template.blocks,
                {**self._globals, **context},
                shared=True,
                globals=self._globals,
            )
            text = template.environment.concat(template.root_render_func(scope))
        except jinja2.UndefinedError as exc:
            raise TemplateError(f"{self.label}: {exc.message}") from exc
        except jinja2.TemplateError as exc:  # sandbox violations and the like
            raise TemplateError(f"{self.label}: {exc}") from exc
        subject = ""
        match = SUBJECT.match(text)
        if match:
            subject = match["subject"].strip()
            text = text[match.end() :]
        return Rendered(text.strip(), subject)


class Templates:
    """Every template in a folder, by (name, language, variant)."""

    def __init__(self, default_language: str = "vi") -> None:
        self.default_language = default_language
        self.env = environment()
        self._by_key: dict[tuple[str, str, str], Template] = {}

    @classmethod
    def load(cls, folder: Path, *, default_language: str = "vi") -> Templates:
        templates = cls(default_language)
        if not folder.is_dir():
            return templates
        for path in sorted(folder.glob(f"*{SUFFIX}")):
            parts = path.name[: -len(SUFFIX)].split(".")
            if len(parts) not in (2, 3) or not NAME.match(parts[0]):
                raise TemplateError(
                    f"{path}: a template file is named <name>.<language>[.<variant>]{SUFFIX}"
                )
            name, language, variant = parts[0], parts[1], parts[2] if len(parts) == 3 else ""
            if not LANGUAGE.match(language):
                raise TemplateError(f"{path}: {language!r} is not a language code such as vi or en")
            try:
                source = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise TemplateError(f"{path}: cannot read it: {exc}") from exc
            templates.add(name, language, source, variant=variant, label=str(path))
        return templates

    def add(
        self, name: str, language: str, source: str, *, variant: str = "", label: str = ""
    ) -> None:
        key = ".".join(part for part in (name, language, variant) if part)
        self._by_key[(name, language, variant)] = Template(
            self.env, source, label or f"template {key}"
        )

    def compile(self, source: str, label: str) -> Template:
        """A template that is not a file (a campaign's text, written in the API)."""
        return Template(self.env, source, label)

    def names(self) -> set[str]:
        return {name for name, _, _ in self._by_key}

    def require(self, name: str, offered: Iterable[str]) -> None:
        """Start-up check for one use: the template exists (in the default
        language at least) and every variant of it is valid for that use."""
        if not any(key[0] == name and key[1] == self.default_language for key in self._by_key):
            raise TemplateError(
                f"template {name!r} is missing: add {name}.{self.default_language}{SUFFIX}"
                " to the templates folder"
            )
        offered = tuple(offered)
        for key, template in self._by_key.items():
            if key[0] == name:
                template.check(offered)

    def find(self, name: str, *, language: str | None, variants: Iterable[str] = ()) -> Template:
        variants = [v for v in variants if v]
        languages = [language_of(language) or self.default_language]
        if languages[0] != self.default_language:
            languages.append(self.default_language)
        for lang in languages:
            for variant in (*variants, ""):
                template = self._by_key.get((name, lang, variant))
                if template is not None:
                    return template
        raise TemplateError(f"template {name!r} is missing for language {languages[0]!r}")

    def render(
        self,
        name: str,
        context: Mapping[str, Any],
        *,
        language: str | None,
        variants: Iterable[str] = (),
    ) -> Rendered:
        return self.find(name, language=language, variants=variants).render(context)
