"""Who is looking at the page: sign-in and sign-out through Streamlit's OIDC, and the actor.

``[auth]`` in ``.streamlit/secrets.toml`` turns sign-in on (``st.login``); the ``[editors]``
table lists who may change the map (``emails = [...]``, ``subjects = [...]``). Without
``[auth]`` every visitor is an anonymous viewer (docs/deploy.md).
"""

from __future__ import annotations

import streamlit as st
from streamlit.errors import StreamlitAuthError

from geo_app.auth import ANONYMOUS, Actor, actor_from_claims, parse_editors
from geo_app.errors import GeoAppError
from geo_app.i18n import t
from geo_app.views.common import md_escape, show_error


def auth_configured() -> bool:
    """True when the secrets hold an ``[auth]`` table (sign-in is possible)."""
    return bool(st.secrets.load_if_toml_exists() and "auth" in st.secrets)


def current_actor() -> Actor:
    """The visitor as an :class:`~geo_app.auth.Actor`: anonymous unless signed in through
    ``[auth]``; an editor only when listed in ``[editors]``.

    Raises
    ------
    SettingsError
        When ``[editors]`` is malformed.
    """
    if not auth_configured():
        return ANONYMOUS
    claims = st.user.to_dict()
    return actor_from_claims(claims, parse_editors(st.secrets.get("editors")))


def account_box(lang: str) -> Actor:
    """Say who the visitor is and offer sign-in or sign-out; returns the actor."""
    if not auth_configured():
        st.info(t("auth_off", lang))
        return ANONYMOUS
    try:
        actor = current_actor()
    except GeoAppError as err:
        show_error(err)
        return ANONYMOUS
    if not actor.signed_in:
        st.caption(t("auth_anonymous", lang))
        if st.button(t("auth_sign_in", lang), key="auth_sign_in"):
            try:
                st.login()
            except StreamlitAuthError as err:  # [auth] incomplete, or Authlib missing
                st.error(md_escape(t("auth_sign_in_failed", lang, error=err)))
        return actor
    key = "auth_editor" if actor.is_editor else "auth_viewer"
    st.caption(md_escape(t(key, lang, who=actor.label())))
    if st.button(t("auth_sign_out", lang), key="auth_sign_out"):
        st.logout()
    return actor
