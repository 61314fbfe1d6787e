"""The app's layout rules: thin pages that call mtlcore, every page reachable."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APP_FILES = [ROOT / "app.py", *sorted((ROOT / "views").glob("*.py")), *sorted((ROOT / "ui").glob("*.py"))]


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_pages_never_import_torch():
    offenders = [p.name for p in APP_FILES if "torch" in imported_modules(p) or "torchvision" in imported_modules(p)]
    assert not offenders, f"pages must call mtlcore, not torch: {offenders}"


def test_every_view_is_in_the_navigation():
    shell = (ROOT / "ui" / "shell.py").read_text()  # app.py runs ui/shell.py, which holds the navigation
    for view in (ROOT / "views").glob("*.py"):
        assert f'"views/{view.name}"' in shell, f"{view.name} is not listed in ui/shell.py's navigation"


def test_no_pages_folder_that_streamlit_would_run_without_app_py():
    # Streamlit runs a folder named pages/ as an old-style multipage app on a
    # direct link, skipping app.py's navigation and sidebar.
    assert not (ROOT / "pages").exists()


def test_the_server_does_not_collect_all_garbage_after_every_rerun():
    # Streamlit's default gc.collect(2) after each rerun held the server's interpreter 0.1-0.3 s with PyTorch
    # loaded, once a second for every browser watching a live chart (Train, Gradients): the pages stalled and
    # the Gradients page's comparison lost a third of a core. Python's own collector still runs.
    from helpers import streamlit_settings

    assert streamlit_settings()["runner"]["postScriptGC"] is False
