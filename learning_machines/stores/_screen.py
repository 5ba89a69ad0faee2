"""Screening text before it is written where other users will read it. Pure; no I/O.

A shared namespace is read by everyone configured with it, and what is recalled from it goes
into their agents' system prompts. :func:`screen_text` flags what should not travel that way
unreviewed:

- ``instruction``: text addressed to the model rather than knowledge about the world ("ignore
  previous instructions", "you are now …", "you must always recommend …", "do not tell the
  user").
- ``markup``: text that could open or close prompt blocks or impersonate a role
  (``</learned_context>``, ``<system>``, ``[SYSTEM]``, ``<|im_start|>``, ``assistant:`` at the
  start of a line), and invisible or bidirectional control characters that hide text.
- ``secret``: API keys and tokens of common shapes, private keys, passwords and credentials in
  connection strings.
- ``url``: links (``https://…``, ``www.…``, any ``scheme://``), which can carry data out or
  lead users elsewhere.
- ``personal_data``: e-mail addresses, phone numbers, card numbers (Luhn-checked), US social
  security numbers.

It is a filter of known shapes, not a proof of safety: paraphrased instructions, other
languages, homoglyphs and secrets without a recognisable shape pass. See ``docs/security.md``
for what it does and does not catch, and for the false-positive rate measured on benign
insights.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

__all__ = ["ScreenFinding", "ScreenKind", "ScreenResult", "screen_payload", "screen_text"]

ScreenKind = Literal["instruction", "markup", "secret", "url", "personal_data"]
"""What a finding is about (see the module docstring)."""

_EXCERPT = 60
_HIDDEN = "holds invisible or direction-changing characters"


@dataclass(frozen=True, kw_only=True)
class ScreenFinding:
    """One thing found in the text."""

    kind: ScreenKind
    """What it is about."""
    reason: str
    """Why it was flagged, in words."""
    excerpt: str
    """The text that matched (secrets masked after their first four characters)."""


@dataclass(frozen=True, kw_only=True)
class ScreenResult:
    """What :func:`screen_text` found; empty when nothing was flagged."""

    findings: tuple[ScreenFinding, ...] = ()
    """Every finding, in the order of the rules."""

    @property
    def flagged(self) -> bool:
        """Whether anything was found."""
        return bool(self.findings)

    @property
    def kinds(self) -> frozenset[ScreenKind]:
        """The kinds found."""
        return frozenset(f.kind for f in self.findings)

    @property
    def reasons(self) -> tuple[str, ...]:
        """One line per finding: ``"secret: looks like an AWS access key (AKIA…)"``."""
        return tuple(f"{f.kind}: {f.reason} ({f.excerpt})" for f in self.findings)


@dataclass(frozen=True)
class _Rule:
    kind: ScreenKind
    reason: str
    pattern: re.Pattern[str]


def _rule(kind: ScreenKind, reason: str, pattern: str, flags: int = re.IGNORECASE) -> _Rule:
    return _Rule(kind, reason, re.compile(pattern, flags))


_ROLE = r"(?:system|assistant|developer|user|human)"
# Prompt blocks: opening or closing ours (or a system/instructions block) is flagged; generic
# names only when closed, since "<context>" is a common placeholder in engineering notes.
_BLOCK = r"(?:learn(?:ed|ing)_\w+|system|instructions?|prompt|developer)"
_CLOSED = r"(?:context|memory|knowledge|data|documents?|user|assistant|tool|function)"
# Speech the model addresses to users: the verbs of steering an answer.
_SPEECH = (
    r"(?:say|tell|respond|reply|answer|recommend|reveal|disclose|obey|comply|promote|endorse|"
    r"ask\s+(?:the\s+)?users?\s+(?:for|to))"
)
_EARLIER = r"(?:previous|prior|above|earlier|preceding|foregoing|original|initial|system|existing)"

_RULES: tuple[_Rule, ...] = (
    # --- instructions addressed to the model ---------------------------------------------------
    _rule(
        "instruction",
        "tells the model to ignore its instructions",
        rf"\b(?:ignore|disregard|forget|override|bypass)\s+(?:(?:all|any|the|of|these)\s+){{0,3}}"
        rf"{_EARLIER}\s+(?:instructions?|prompts?|rules|directives|guidelines|messages|context)\b"
        r"|\b(?:ignore|disregard|forget|override)\s+(?:all\s+)?(?:your|the\s+system'?s?)\s+"
        r"(?:instructions?|prompts?|rules|guidelines)\b"
        r"|\b(?:ignore|disregard|forget)\s+(?:everything|all)\s+(?:above|before|previously|"
        r"you\s+(?:were|have\s+been)\s+told)\b",
    ),
    _rule(
        "instruction",
        "reassigns the model's role",
        r"\byou\s+are\s+(?:now\s+(?:an?|the|in|my|called|named|dan)\b|no\s+longer\b)"
        r"|\bfrom\s+now\s+on,?\s+(?:you|the\s+(?:assistant|ai|model|agent))\b"
        r"|\bpretend\s+(?:to\s+be|you\s+are)\b"
        r"|\b(?:act|behave)\s+as\s+(?:if\s+you\s+were\s+)?(?:an?\s+)?"
        r"(?:unrestricted|unfiltered|jailbroken|different)\b"
        r"|\b(?:developer|god|jailbreak|dan)\s+mode\b",
    ),
    _rule(
        "instruction",
        "addresses the model directly",
        r"\bas\s+an?\s+(?:ai|language\s+model|llm|chatbot)\b"
        r"|\b(?:dear\s+)?(?:assistant|ai|chatbot|language\s+model|llm)\s*[,:]\s*(?:you\s+)?"
        r"(?:must|should|will|always|never|do\s+not|don't)\b"
        r"|\b(?:new|updated|real|hidden|secret|actual)\s+(?:instructions|rules|system\s+prompt)"
        r"\s*:",
    ),
    _rule(
        "instruction",
        "commands the model how to answer users",
        rf"\byou\s+(?:must|should|have\s+to|need\s+to|will)\s+(?:always\s+|never\s+|now\s+|"
        rf"only\s+)?{_SPEECH}\b"
        rf"|\b(?:always|never)\s+{_SPEECH}\b"
        r"|\b(?:do\s+not|don't|never)\s+(?:tell|inform|warn)\s+(?:the\s+)?users?\b"
        r"|\b(?:in|at\s+the\s+end\s+of)\s+(?:every|each|all|your)\s+"
        r"(?:answers?|responses?|replies)\b",
    ),
    # --- markup that opens or closes prompt blocks, role tags, hidden text ----------------------
    _rule(
        "markup", "opens or closes a prompt block", rf"<\s*/?\s*{_BLOCK}\b[^>]*>|</\s*{_CLOSED}\s*>"
    ),
    _rule(
        "markup",
        "looks like a role tag",
        rf"<\s*/?\s*(?:system|assistant|developer)\s*>|\[\s*/?\s*(?:{_ROLE}|inst|sys|admin)\s*\]"
        rf"|<\|[^|>\n]{{1,40}}\|>|^\s*(?:#+\s*)?{_ROLE}\s*:|```\s*{_ROLE}\b",
        re.IGNORECASE | re.MULTILINE,
    ),
    _rule(
        "markup",
        _HIDDEN,
        # Zero-width (non-)joiners and direction marks are normal in emoji and in Persian,
        # Hindi, Hebrew or Thai text: only flagged inside Latin words, where they hide words.
        "[\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\U000e0000-\U000e007f]"
        "|(?<=[A-Za-z])[\u200b-\u200f](?=[A-Za-z])",
        0,
    ),
    # --- secrets --------------------------------------------------------------------------------
    _rule("secret", "holds a private key", r"-----BEGIN [A-Z ]*PRIVATE KEY-----", 0),
    _rule("secret", "looks like an AWS access key", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b", 0),
    _rule(
        "secret",
        "looks like an API token",
        r"\b(?:sk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}|gh[pousr]_[A-Za-z0-9]{30,}|"
        r"github_pat_[A-Za-z0-9_]{20,}|xox[abprs]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35}|"
        r"(?:sk|rk|pk)_(?:live|test)_[0-9A-Za-z]{16,}|glpat-[0-9A-Za-z_-]{20})",
        0,
    ),
    _rule(
        "secret",
        "looks like a signed token (JWT)",
        r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}",
        0,
    ),
    _rule(
        "secret",
        "gives a password or key value",
        r"\b(?:password|passwd|pwd|passphrase|secret|api[_ -]?key|access[_ -]?token|"
        r"auth[_ -]?token|bearer|client[_ -]?secret|token)\s*(?:is|=|:)\s*['\"]?"
        r"(?![$<{%])(?=[^\s'\"]*[\d!@#$%^&*_+=])[^\s'\"]{6,}",
    ),
    _rule(
        "secret",
        "has credentials in a connection string",
        r"\b[a-z][a-z0-9+.-]{1,15}://[^\s/:@]+:[^\s/@]+@",
    ),
    # --- links ----------------------------------------------------------------------------------
    _rule("url", "holds a link", r"\b[a-z][a-z0-9+.-]{1,15}://\S+|\bwww\.[a-z0-9-]+\.[a-z]{2,}\S*"),
    # --- personal data --------------------------------------------------------------------------
    _rule(
        "personal_data",
        "holds an e-mail address",
        r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b",
    ),
    _rule(
        "personal_data",
        "holds a phone number",
        r"(?<![\w+])\+\d{1,3}(?:[\s-]?\(?\d{1,4}\)?){2,4}(?![\w])"
        r"|\(\d{2,4}\)\s?\d{3,4}[\s-]\d{3,4}\b"
        r"|\b\d{2,4}-\d{3,4}-\d{4}\b",
    ),
    _rule("personal_data", "holds a US social security number", r"\b\d{3}-\d{2}-\d{4}\b", 0),
)

# A long mixed-case alphanumeric run with digits is a key whatever its prefix; hex (hashes,
# UUIDs) is left alone, as commits and ids are normal in engineering insights.
_OPAQUE = re.compile(r"(?<![\w-])[A-Za-z0-9_\-]{32,}(?![\w-])")
_CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def _luhn(number: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(number)):
        d = int(char)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _mask(kind: ScreenKind, text: str) -> str:
    text = " ".join(text.split())
    if kind == "secret":
        return text[:4] + "…"
    return text if len(text) <= _EXCERPT else text[: _EXCERPT - 1] + "…"


def _extra(text: str) -> Iterable[tuple[ScreenKind, str, str]]:
    for match in _OPAQUE.finditer(text):
        token = match.group()
        if re.fullmatch(r"[0-9a-fA-F-]+", token):
            continue
        if (
            any(c.isdigit() for c in token)
            and any(c.isupper() for c in token)
            and any(c.islower() for c in token)
        ):
            yield "secret", "looks like an opaque key or token", token
    for match in _CARD.finditer(text):
        number = _digits(match.group())
        if 13 <= len(number) <= 19 and _luhn(number):
            yield "personal_data", "holds a payment card number", match.group()


def screen_text(text: str) -> ScreenResult:
    """Screen ``text`` about to be written to a shared namespace (see the module docstring)."""
    if not text:
        return ScreenResult()
    # Hidden characters are a finding themselves; the other rules read the text without them
    # and in compatibility form, so "ｉｇｎｏｒｅ" or "ig\u200bnore" reads as "ignore".
    visible = unicodedata.normalize("NFKC", text)
    plain = re.sub("[\u200b-\u200f\u2060-\u2064\ufeff]", "", visible)
    findings: list[ScreenFinding] = []
    seen: set[tuple[ScreenKind, str]] = set()

    def add(kind: ScreenKind, reason: str, excerpt: str) -> None:
        if (kind, reason) not in seen:
            seen.add((kind, reason))
            findings.append(ScreenFinding(kind=kind, reason=reason, excerpt=_mask(kind, excerpt)))

    for rule in _RULES:
        if rule.reason == _HIDDEN:
            hidden = rule.pattern.search(text)
            if hidden:
                add(rule.kind, rule.reason, f"U+{ord(hidden.group()):04X}")
            continue
        match = rule.pattern.search(plain)
        if match:
            add(rule.kind, rule.reason, match.group())
    for kind, reason, excerpt in _extra(plain):
        add(kind, reason, excerpt)
    return ScreenResult(findings=tuple(findings))


def screen_payload(payload: object) -> ScreenResult:
    """Screen every string in a write's payload (nested mappings and lists; keys too)."""
    parts: list[str] = []

    def walk(value: object) -> None:
        if isinstance(value, str):
            parts.append(value)
        elif isinstance(value, Mapping):
            for key, item in value.items():
                walk(key)
                walk(item)
        elif isinstance(value, list | tuple | set | frozenset):
            for item in value:
                walk(item)

    walk(payload)
    findings: list[ScreenFinding] = []
    seen: set[tuple[ScreenKind, str]] = set()
    for part in parts:
        for finding in screen_text(part).findings:
            if (finding.kind, finding.reason) not in seen:
                seen.add((finding.kind, finding.reason))
                findings.append(finding)
    return ScreenResult(findings=tuple(findings))
