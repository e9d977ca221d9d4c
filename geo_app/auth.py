"""Who is acting: the identity a write carries, who counts as an editor, and the one check.

Pure (no Streamlit, no database): the pages build an :class:`Actor` from ``st.user`` and the
``[editors]`` table of ``.streamlit/secrets.toml`` (:func:`actor_from_claims`), the command
line uses the local OS user (:func:`local_actor`), and every write function of the core
calls :func:`require_editor` before it touches the database (docs/deploy.md).
"""

from __future__ import annotations

import getpass
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from geo_app.errors import NotAuthorisedError
from geo_app.settings import SettingsError

__all__ = ["Actor", "Editors", "ANONYMOUS", "local_actor", "parse_editors", "actor_from_claims",
           "require_editor"]


@dataclass(frozen=True)
class Actor:
    """The identity on whose behalf the app reads or writes.

    Attributes
    ----------
    subject
        The OIDC ``sub`` claim, or the local OS user name; ``""`` for an anonymous visitor.
    email
        The OIDC ``email`` claim (``""`` when the provider sends none, or for a local user).
    name
        A display name (the OIDC ``name`` claim, or the OS user name).
    kind
        ``"oidc"`` for a web sign-in (or an anonymous visitor), ``"local"`` for the CLI.
    is_editor
        Whether this identity may change the map.
    """

    subject: str
    email: str = ""
    name: str = ""
    kind: Literal["oidc", "local"] = "oidc"
    is_editor: bool = False

    @property
    def signed_in(self) -> bool:
        """True for anyone but the anonymous visitor."""
        return bool(self.subject)

    def label(self) -> str:
        """How the identity is shown: the e-mail, else the name, else the subject.

        >>> Actor("abc", "a@example.org").label()
        'a@example.org'
        >>> local_actor("alice").label()
        'local:alice'
        """
        if self.kind == "local":
            return f"local:{self.subject}"
        return self.email or self.name or self.subject or "anonymous"


#: A visitor who has not signed in: reads, never writes.
ANONYMOUS = Actor(subject="")


def local_actor(user: str | None = None) -> Actor:
    """The local administrator: the OS user running ``geo-app`` (an editor by definition).

    Whoever can run the command line on the server can write the database file anyway;
    the identity only says who did it.
    """
    name = user or getpass.getuser()
    return Actor(subject=name, name=name, kind="local", is_editor=True)


@dataclass(frozen=True)
class Editors:
    """Who may change the map: OIDC e-mails (compared case-insensitively) and subjects."""

    emails: frozenset[str] = frozenset()
    subjects: frozenset[str] = frozenset()

    def includes(self, subject: str, email: str, *, email_verified: bool = True) -> bool:
        """Whether the identity ``subject``/``email`` is listed.

        An e-mail the provider marks unverified never matches (anyone could claim it).

        >>> Editors(emails=frozenset({"a@example.org"})).includes("x", "A@Example.org")
        True
        >>> Editors(emails=frozenset({"a@example.org"})).includes("x", "a@example.org",
        ...                                                       email_verified=False)
        False
        """
        if subject and subject in self.subjects:
            return True
        return bool(email) and email_verified and email.strip().lower() in self.emails


def _strings(section: Mapping[str, Any], key: str) -> list[str]:
    value = section.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Iterable) or not all(isinstance(v, str) for v in value):
        msg = f"[editors] {key} in secrets.toml must be a list of strings, e.g. {key} = [\"...\"]"
        raise SettingsError(msg)
    return [v.strip() for v in value if v.strip()]


def parse_editors(section: Mapping[str, Any] | None) -> Editors:
    """The ``[editors]`` table of ``secrets.toml``: ``emails = [...]``, ``subjects = [...]``.

    Raises
    ------
    SettingsError
        If a key holds something other than a string or a list of strings.

    >>> parse_editors({"emails": ["Editor@Example.org"], "subjects": "abc"})
    Editors(emails=frozenset({'editor@example.org'}), subjects=frozenset({'abc'}))
    >>> parse_editors(None)
    Editors(emails=frozenset(), subjects=frozenset())
    """
    if not section:
        return Editors()
    return Editors(emails=frozenset(e.lower() for e in _strings(section, "emails")),
                   subjects=frozenset(_strings(section, "subjects")))


def actor_from_claims(claims: Mapping[str, Any], editors: Editors) -> Actor:
    """The actor for a signed-in user's ID-token claims (``st.user``), or :data:`ANONYMOUS`.

    Parameters
    ----------
    claims
        ``is_logged_in`` and the claims the provider sent (``sub``, ``email``,
        ``email_verified``, ``name``...). Without ``is_logged_in`` true, or without a
        subject, the visitor is anonymous.
    editors
        Who is an editor; a signed-in user who is not listed is a viewer.
    """
    if claims.get("is_logged_in") is not True:
        return ANONYMOUS
    subject = str(claims.get("sub") or "").strip()
    if not subject:
        return ANONYMOUS
    email = str(claims.get("email") or "").strip()
    name = str(claims.get("name") or claims.get("preferred_username") or "").strip()
    verified = claims.get("email_verified") is not False
    return Actor(subject=subject, email=email, name=name, kind="oidc",
                 is_editor=editors.includes(subject, email, email_verified=verified))


def require_editor(actor: Actor, action: str) -> None:
    """Refuse ``action`` unless ``actor`` is an editor; every write of the core calls this first.

    Raises
    ------
    NotAuthorisedError
        For an anonymous visitor or a signed-in viewer (nothing has been written).
    """
    if not isinstance(actor, Actor):
        msg = (f"{action}: no acting identity was given; nothing was changed / "
               "未提供操作者身份，未作任何更改")
        raise NotAuthorisedError(msg)
    if actor.is_editor:
        return
    who = "You are not signed in" if not actor.signed_in else f"{actor.label()} is not an editor"
    msg = (f"{who}: only editors may {action}; nothing was changed. / "
           f"只有编辑者可以执行此操作（{action}），未作任何更改。")
    raise NotAuthorisedError(msg)
