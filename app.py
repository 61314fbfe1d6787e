"""MTL Lab: the Streamlit entry point (``streamlit run app.py``).

The page configuration, the navigation and the sidebar every page shares are
``ui/shell.py``. The pages live in ``views/`` (not ``pages/``: Streamlit
would run a folder of that name as an old-style multipage app, skipping this
file); all training happens in background workers.
"""

# Streamlit runs this file as __main__. A process that the multiprocessing module starts from the app (the
# Gradients page's comparisons, the toy reproduction's workers) runs it again as __mp_main__ before it does
# its work (the standard library's "safe importing of main module"): there it must neither draw the app nor
# start a training worker, and it imports nothing, so such a process starts at once.
if __name__ == "__main__":
    from ui.shell import main

    main()
