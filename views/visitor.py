"""Visitor identity in the dashboard: one id per browser, kept for a month in a signed cookie.

Streamlit reads cookies (`st.context.cookies`) but cannot set them, so the first page of a new browser sets it with a
tiny script (a components-v2 element runs in the page). A reload, a new tab or another page of the same browser then
carries the same id: the visitor follows and stops their own training and sees their own runs everywhere.
"""

from __future__ import annotations

import streamlit as st

from digitlab import identity

_SCRIPT = """
export default function (component) {
  const value = component.data && component.data.value;
  if (value) {
    const secure = location.protocol === 'https:' ? '; Secure' : '';
    document.cookie = `%s=${value}; Max-Age=%d; Path=/; SameSite=Lax${secure}`;
  }
}
""" % (identity.COOKIE, identity.MAX_AGE)
_set_cookie = st.components.v2.component("digitlab.visitor_cookie", js=_SCRIPT, isolate_styles=False)


@st.cache_resource(show_spinner=False)
def _secret() -> bytes:
    return identity.load_secret()


def visitor_id() -> str:
    """This browser's visitor id (from its cookie, or new)."""
    if "owner" not in st.session_state:
        owner = identity.verify(st.context.cookies.get(identity.COOKIE), _secret())
        if owner is None:
            owner = identity.new_visitor()
            st.session_state.cookie_to_set = identity.sign(owner, _secret())
        st.session_state.owner = owner
    return st.session_state.owner


def network_id() -> str:
    """The network this session connects from, keyed: a new cookie does not make it new (see `identity.network_of`).
    Streamlit gives the connection's address, or a trusted local proxy's X-Forwarded-For; "" when it has none."""
    if "network" not in st.session_state:
        st.session_state.network = identity.network_of(st.context.ip_address, _secret())
    return st.session_state.network


def keep_cookie() -> None:
    """Put a new visitor's id into their browser's cookie (call on every page run: it stays on the page for the
    session, so the browser sets the cookie whichever page it lands on first)."""
    visitor_id()
    value = st.session_state.get("cookie_to_set")
    if value:
        _set_cookie(data={"value": value}, key="visitor-cookie")
