"""One Streamlit page script per file; ``app.py`` lists them with ``st.navigation``.

Each file runs as ``__main__`` when its page is shown, so its body is behind the usual guard
and the module stays importable (for type checks) without drawing anything.
"""
