"""Streamlit helpers shared by every page (the engine, ``mtlcore``, knows nothing of Streamlit)."""
