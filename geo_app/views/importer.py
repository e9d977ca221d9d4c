"""The importer page (placeholder until its issue lands)."""

from __future__ import annotations

import streamlit as st

from geo_app.views.common import language_switch


def render() -> None:
    """Draw the page."""
    language_switch()
    st.info("This page is being built.")
