"""Sign in with a username and password (OAuth2 password flow); the token stays in this session."""

from __future__ import annotations

import streamlit as st

from limner.ui import navigation, session
from limner.ui.api_errors import ApiError
from limner.ui.client import LimnerClient
from limner.ui.components.feedback import show_error


def sign_in_form(client: LimnerClient) -> None:
    with st.form("login"):
        username = st.text_input("Username", key="login.username")
        password = st.text_input("Password", type="password", key="login.password")
        submitted = st.form_submit_button("Sign in", type="primary", icon=":material/login:")
    if not submitted:
        return
    if not username or not password:
        st.warning("Enter your username and password.")
        return
    try:
        token = client.login(username, password)
        user = LimnerClient(client.base_url, token).me()
    except ApiError as error:
        if error.unauthenticated:
            st.error("The username or password is wrong. Check both and try again.", icon=":material/error:")
        else:
            show_error(error)
        return
    session.sign_in(token, user)
    st.rerun()


def register_form(client: LimnerClient) -> None:
    """Accounts are made by an admin, or here when the admin has opened registration."""
    with st.expander("No account? Register"), st.form("register"):
        username = st.text_input("New username", key="register.username")
        password = st.text_input("New password (8 characters or more)", type="password", key="register.password")
        if st.form_submit_button("Create account"):
            try:
                user = client.register(username, password)
            except ApiError as error:
                show_error(error)
            else:
                st.success(f"Account {user.username} created: sign in above.")


def main() -> None:
    st.title("limner studio")
    st.caption(f"Server: {session.api_url()}")
    notice = session.take_notice()
    if notice:
        st.warning(notice)
    client = session.client()
    sign_in_form(client)
    register_form(client)
    st.page_link(navigation.ARCHITECTURE.path, label="How limner works", icon=navigation.ARCHITECTURE.icon)


if __name__ == "__main__":
    main()
