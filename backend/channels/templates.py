"""Templates: checked when saved, chosen by locale, rendered in Jinja2's sandbox.

A template may use only the variables in VARIABLES; one that does not compile or names another
is refused with the line it is on (`TemplateError`, an InvalidInput). The locale is the customer's
`locale` trait, else the tenant's default, else English; for each, the tenant's own template wins
over the built-in one. Undefined variables fail loudly at render time too (StrictUndefined).
"""

from dataclasses import dataclass
from functools import lru_cache

import jinja2
from jinja2 import meta
from jinja2.sandbox import SandboxedEnvironment

from churnsaver.backend.channels.default_templates import DEFAULTS, TemplateText
from churnsaver.backend.core.errors import InvalidInput

VARIABLES = (
    "customer_name",
    "plan",
    "amount_due",
    "update_payment_link",
    "offer_link",
    "offer_description",
    "unsubscribe_link",
    "merchant_name",
)
FALLBACK_LOCALE = "en"
MAX_TEMPLATE_CHARS = 50_000


class TemplateError(InvalidInput):
    """A template that cannot be used; `line` says where (None: not tied to a line)."""

    def __init__(self, message: str, *, field: str, line: int | None) -> None:
        where = f" (line {line})" if line is not None else ""
        super().__init__(f"{field}{where}: {message}")
        self.field = field
        self.line = line


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str | None
    body_text: str
    body_html: str | None


@lru_cache(maxsize=2)
def _environment(html: bool) -> SandboxedEnvironment:
    return SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=html, keep_trailing_newline=True)


def check(text: str | None, field: str, *, html: bool = False) -> None:
    """Raise TemplateError when `text` does not compile or names a variable not in VARIABLES."""
    if text is None:
        return
    if len(text) > MAX_TEMPLATE_CHARS:
        raise TemplateError(f"a template is at most {MAX_TEMPLATE_CHARS:,} characters", field=field, line=None)
    environment = _environment(html)
    try:
        tree = environment.parse(text)
    except jinja2.TemplateSyntaxError as error:
        raise TemplateError(error.message or "syntax error", field=field, line=error.lineno) from None
    unknown = meta.find_undeclared_variables(tree) - set(VARIABLES)
    if unknown:
        name = sorted(unknown)[0]
        line = next((number for number, row in enumerate(text.splitlines(), 1) if name in row), None)
        raise TemplateError(f"unknown variable {name!r} (variables: {', '.join(VARIABLES)})", field=field, line=line)


def check_template(template: TemplateText) -> None:
    check(template.subject, "subject")
    check(template.body_text, "bodyText")
    check(template.body_html, "bodyHtml", html=True)


def render(template: TemplateText, variables: dict[str, str]) -> Rendered:
    """`template` with `variables` (every name in VARIABLES given); HTML escapes them."""
    values = {name: variables.get(name, "") for name in VARIABLES}
    try:
        return Rendered(
            subject=_render(template.subject, values, html=False),
            body_text=_render(template.body_text, values, html=False) or "",
            body_html=_render(template.body_html, values, html=True),
        )
    except jinja2.TemplateError as error:
        # A stored template was checked when saved; this is a sandbox refusal at render time.
        raise TemplateError(str(error), field="template", line=getattr(error, "lineno", None)) from None


def _render(text: str | None, values: dict[str, str], *, html: bool) -> str | None:
    if text is None:
        return None
    return _compiled(text, html).render(values)


@lru_cache(maxsize=512)
def _compiled(text: str, html: bool) -> jinja2.Template:
    return _environment(html).from_string(text)


def locales_to_try(customer_locale: object, tenant_locale: str) -> list[str]:
    """The customer's locale (and its language alone), the tenant's, then English: first found wins."""
    chosen: list[str] = []
    for locale in (customer_locale, tenant_locale, FALLBACK_LOCALE):
        if isinstance(locale, str) and locale:
            for candidate in (locale, locale.split("-")[0].split("_")[0].lower()):
                if candidate not in chosen:
                    chosen.append(candidate)
    return chosen


def default_template(key: str, channel: str, locale: str) -> TemplateText | None:
    return DEFAULTS.get((key, channel, locale))
