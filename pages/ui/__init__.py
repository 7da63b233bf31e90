"""What the pages share: the app shell and navigation, the session's model, cached encodings, and the
Streamlit components. Not pages themselves: Streamlit's legacy mode lists every *.py at the top of pages/."""
