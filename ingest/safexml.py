"""XML read safely: decoded to text first, then parsed by defusedxml with entities refused.

Every check runs on the decoded text, never on raw bytes: a declaration in UTF-16 or
UTF-32, after a long comment or with a colon in its name is the same declaration to the
parser, so it must be the same to the checks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Protocol

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException, EntitiesForbidden

from infra.errors import DecodeError
from ingest.text import decode

_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
_UTF8_DECLARATION = '<?xml version="1.0" encoding="utf-8"?>'
# Any name (colons included) and any spacing: what matters is that a declaration exists.
_ENTITY = re.compile(r"<!ENTITY\s*(?:%\s*)?[^\s>]*\s*(SYSTEM|PUBLIC)?[^>]{0,200}", re.IGNORECASE)


class Target(Protocol):
    """What `parse_xml` feeds: the start/data/end/close protocol of ElementTree targets."""

    def start(self, tag: str, attrs: Mapping[str, str]) -> None:
        """Open an element."""

    def data(self, text: str) -> None:
        """Take character data."""

    def end(self, tag: str) -> None:
        """Close an element."""

    def close(self) -> None:
        """Finish parsing."""


def xml_text(raw: bytes) -> tuple[str, str]:
    """Return the text of XML bytes, its XML declaration naming UTF-8, and the encoding read.

    `ingest.text.decode` chose the encoding (valid UTF-8 wins over a wrong declaration), so
    the declaration is rewritten to say so: ``text.encode("utf-8")`` is then a consistent
    document for any XML reader.
    """
    text, encoding = decode(raw)
    text = text.removeprefix("\ufeff")
    return _XML_DECLARATION.sub(_UTF8_DECLARATION, text, count=1), encoding


def parse_xml(text: str, target: Target) -> None:
    """Feed decoded XML to a parser target, refusing entity declarations and external references.

    Raises:
        DecodeError: ``xml_bomb`` (an entity is declared) or ``unsafe_xml`` (an external
            entity or reference).
        SafeET.ParseError: the text is not well-formed XML; the target keeps what it saw.
    """
    parser = SafeET.XMLParser(target=target)
    try:
        # A str is parsed as UTF-8 whatever its declaration says: no second decoding.
        parser.feed(text)
        parser.close()
    except EntitiesForbidden as exc:
        # An entity with a system id reads a file or URL (XXE); one without expands (a bomb).
        if getattr(exc, "sysid", None):
            reason, msg = "unsafe_xml", f"external entities are refused: {exc}"
        else:
            reason, msg = "xml_bomb", f"entity declarations are refused: {exc}"
        raise DecodeError(reason, msg) from exc
    except DefusedXmlException as exc:
        reason, msg = "unsafe_xml", f"external references are refused: {exc}"
        raise DecodeError(reason, msg) from exc
    except (SafeET.ParseError, ValueError) as exc:
        # Where expat stops early it may not have met every declaration, and the lenient
        # readers that take over (feedparser's) must not meet one either.
        refuse_entities(text)
        if isinstance(exc, SafeET.ParseError):
            raise
        # expat's own ValueErrors ("multi-byte encodings are not supported") are bad XML too.
        raise SafeET.ParseError(str(exc)) from exc


def refuse_entities(text: str) -> None:
    """Refuse decoded XML text that declares an entity anywhere.

    Raises:
        DecodeError: ``unsafe_xml`` for an external entity, ``xml_bomb`` for any other.
    """
    entity = _ENTITY.search(text)
    if entity is None:
        return
    shown = entity.group(0)[:120]
    if entity.group(1) is not None:
        reason, msg = "unsafe_xml", f"external entity declared: {shown!r}"
    else:
        reason, msg = "xml_bomb", f"entity declarations are refused: {shown!r}"
    raise DecodeError(reason, msg)
