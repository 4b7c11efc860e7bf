"""The Streamlit entry script: page setup, the menu, sign-in gating and the last error guard.

Run by ``limner ui`` (``streamlit run`` on this file) with ``LIMNER_UI_API_URL`` naming the
server. Every page is a client of that server's REST API; an expired login anywhere sends the
person back to the sign-in form with a note, and no exception reaches the browser as a traceback.
"""

from __future__ import annotations

import logging

import streamlit as st
from streamlit.navigation.page import StreamlitPage

from limner.ui import navigation, session
from limner.ui.api_errors import ApiError
from limner.ui.views import login

logger = logging.getLogger("limner.ui")


def _pages() -> tuple[dict[str, list[StreamlitPage]], dict[str, navigation.PageSpec]]:
    """``st.Page`` objects per menu section (Home is the default), and the spec of each by title.

    By title because the default page's ``url_path`` reads as ``""``.
    """
    menu = {section: list(specs) for section, specs in navigation.MENU.items()}
    menu[""] = [navigation.LOGIN]
    pages = {
        section: [
            st.Page(
                spec.path, title=spec.title, icon=spec.icon, url_path=spec.url_path, default=spec is navigation.HOME
            )
            for spec in specs
        ]
        for section, specs in menu.items()
    }
    return pages, {spec.title: spec for specs in menu.values() for spec in specs}


def _sidebar() -> None:
    user = session.current_user()
    with st.sidebar:
        if user is not None:
            st.caption(f"Signed in as **{user.username}** ({user.role})")
            if st.button("Sign out", icon=":material/logout:"):
                session.sign_out("Signed out.")
                st.rerun()
        st.caption(f"API: {session.api_url()}")


def _run(page: StreamlitPage, spec: navigation.PageSpec | None) -> None:
    if session.signed_in() or spec in navigation.PUBLIC:
        page.run()
    else:
        login.main()


def main() -> None:
    st.set_page_config(page_title="limner studio", page_icon=":material/palette:", layout="wide")
    pages, specs = _pages()
    signed_in = session.signed_in()
    if signed_in:
        pages.pop("")  # the sign-in page is not in the menu once signed in
    page = st.navigation(pages, position="sidebar" if signed_in else "hidden")
    _sidebar()
    try:
        _run(page, specs.get(page.title))
    except ApiError as error:
        if error.unauthenticated:
            session.sign_out("Your session has ended (or the server forgot it): please sign in again.")
            st.rerun()
        st.error(error.readable(), icon=":material/error:")
    except Exception as error:  # the last guard: a sentence for the person, the details in the log
        logger.exception("page failed")
        st.error(f"The studio hit an unexpected problem ({type(error).__name__}: {error}).", icon=":material/error:")


if __name__ == "__main__":
    main()
