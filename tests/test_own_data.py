"""Your own data: a folder or zip of images with labels.csv, or a plain CSV table."""
import io
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from mtlcore import ExperimentConfig, fit
from mtlcore.data import DATASETS, dataset_info, list_datasets, load_dataset, own, refresh_datasets
from mtlcore.data import own_import
from mtlcore.data.own_import import DataImportError, import_images, import_table, preview
from mtlcore.runs.datasets import delete_dataset
from mtlcore.images import read_image

COLORS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("MTL_HOME", str(tmp_path / "lab"))
    refresh_datasets()
    yield tmp_path / "lab"
    monkeypatch.setenv("MTL_HOME", str(tmp_path / "elsewhere"))
    refresh_datasets()  # forget this test's datasets


def write_folder(folder, n=30, rows=None, header="file,color,brightness"):
    """n pictures of one colour each; labels.csv with a class and a number.

    ``rows`` replaces the generated data rows (as text lines).
    """
    folder.mkdir(parents=True, exist_ok=True)
    lines = [header]
    for i in range(n):
        color = list(COLORS)[i % 3]
        brightness = 0.4 + 0.6 * (i % 5) / 4
        rgb = tuple(int(c * brightness) for c in COLORS[color])
        Image.new("RGB", (24 + i % 3, 20), rgb).save(folder / f"pic{i:02d}.png")
        lines.append(f"pic{i:02d}.png,{color},{brightness:.2f}")
    if rows is not None:
        lines = [header, *rows]
    (folder / "labels.csv").write_text("\n".join(lines) + "\n")
    return folder


def zip_bytes(entries):
    """A zip built in memory from {name: bytes}."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def zip_folder(folder, top="pets"):
    return zip_bytes({f"{top}/{p.name}": p.read_bytes() for p in sorted(folder.iterdir())})


def leftovers(home):
    root = home / "datasets"
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


# ----- images ----------------------------------------------------------------

def test_an_imported_folder_with_two_label_columns_trains_and_reports_both_tasks(home, tmp_path):
    source = write_folder(tmp_path / "pets")
    seen = preview(source)
    assert seen.kind == "images" and seen.file_column == "file" and seen.rows == 30
    assert {c.name: c.suggested for c in seen.columns} == {"color": "classification", "brightness": "regression"}

    import_images(source, "pets")
    info = dataset_info("pets")
    assert "pets" in [i.name for i in list_datasets()]
    assert info.source == "imported" and info.input_kind == "image"
    assert info.task("color").classes == ("blue", "green", "red")
    assert info.task("brightness").kind == "regression"

    config = ExperimentConfig.from_flat({
        "dataset.name": "pets", "tasks": "color,brightness", "train.epochs": 1, "train.batch_size": 8,
        "model.width": 8, "device": "cpu",
    })
    result = fit(config)
    assert result.status == "finished"
    assert "accuracy" in result.summary["test"]["color"] and "mae" in result.summary["test"]["brightness"]


def test_imported_images_are_small_rgb_and_predict_preprocesses_them_the_same_way(home, tmp_path):
    source = write_folder(tmp_path / "pets")
    import_images(source, "pets", image_size=16)
    data = load_dataset("pets", seed=0)
    assert data.input_shape == (3, 16, 16) and data.train.x.min() >= -1 and data.train.x.max() <= 1
    info = dataset_info("pets")
    everything = torch.cat([s.x for s in data.splits().values()])
    x = info.preprocess(read_image(source / "pic07.png"), **info.options)
    assert x.shape == (3, 16, 16)
    assert torch.isclose(everything, x).flatten(1).all(1).any()  # exactly one of the training inputs


def test_a_zip_with_a_top_folder_imports_and_kinds_can_be_overridden(home, tmp_path):
    data = zip_folder(write_folder(tmp_path / "pets"))
    import_images(data, "pets-zip", kinds={"brightness": "classification"})
    assert dataset_info("pets-zip").task("brightness").classes == ("0.40", "0.55", "0.70", "0.85", "1.00")
    assert leftovers(home) == ["pets-zip"]


def test_imported_datasets_persist_across_restarts_and_other_processes_find_them(home, tmp_path):
    import_images(write_folder(tmp_path / "pets"), "pets")
    # A worker that started before the import: it has never seen the name.
    own.forget("pets")
    assert "pets" not in DATASETS.names()
    assert "pets" in DATASETS and dataset_info("pets").task("color").num_classes == 3
    # A fresh process (the app after a restart) lists it with the others.
    code = "from mtlcore.data import list_datasets; print([i.name for i in list_datasets()][-1])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "MTL_HOME": str(home)}, check=True).stdout
    assert out.strip() == "pets"
    delete_dataset("pets")
    assert "pets" not in DATASETS and leftovers(home) == []
    with pytest.raises(ValueError, match="Unknown dataset 'pets'"):
        load_dataset("pets")


def bad_folder(tmp_path, case):
    """A folder (or zip) with one thing wrong; returns what to import."""
    folder = tmp_path / case
    if case == "no file column":
        return write_folder(folder, header="name,color,brightness",
                            rows=[f"p{i},red,1" for i in range(12)])
    if case == "broken image":
        write_folder(folder)
        (folder / "pic03.png").write_bytes(b"not a picture at all")
        return folder
    if case == "missing image":
        write_folder(folder)
        (folder / "pic05.png").unlink()
        return folder
    if case == "lonely class":
        write_folder(folder)
        text = (folder / "labels.csv").read_text().replace("pic04.png,green", "pic04.png,purple")
        (folder / "labels.csv").write_text(text)
        return folder
    if case == "one value":
        write_folder(folder)
        lines = (folder / "labels.csv").read_text().splitlines()
        lines = [lines[0]] + [",".join(line.split(",")[:2] + ["0.5"]) for line in lines[1:]]
        (folder / "labels.csv").write_text("\n".join(lines) + "\n")
        return folder
    if case == "empty csv":
        write_folder(folder)
        (folder / "labels.csv").write_text("")
        return folder
    if case == "malformed csv":
        write_folder(folder)
        with open(folder / "labels.csv", "a") as f:
            f.write("pic01.png,red,0.5,surprise\n")
        return folder
    if case == "outside the folder":
        write_folder(folder)
        text = (folder / "labels.csv").read_text().replace("pic02.png", "../secret.png")
        (folder / "labels.csv").write_text(text)
        return folder
    if case == "zip slip":
        inner = write_folder(tmp_path / "slip-src")
        entries = {p.name: p.read_bytes() for p in inner.iterdir()}
        entries["../../evil.sh"] = b"rm -rf ~"
        return zip_bytes(entries)
    if case == "zip too large":
        inner = write_folder(tmp_path / "big-src")
        entries = {p.name: p.read_bytes() for p in inner.iterdir()}
        entries["padding.bin"] = bytes(3 * 2**20)  # compresses to a few kB, unpacks to 3 MB
        return zip_bytes(entries)
    raise AssertionError(case)


BAD = {
    "no file column": "no column naming the image files",
    "broken image": "1 image cannot be opened, e.g. 'pic03.png'",
    "missing image": "names 1 file that is not in the folder, e.g. 'pic05.png'",
    "lonely class": "the class 'purple' has only 1 sample",
    "one value": "the task 'brightness' has only one value",
    "empty csv": "labels.csv is empty",
    "malformed csv": "row 32 has 4 values but the header has 3 columns",
    "outside the folder": "names '../secret.png', which is outside the folder",
    "zip slip": "'../../evil.sh', which would unpack outside its folder; the zip is refused",
    "zip too large": "unpacks to 3 MB; the limit is 2 MB, so it is refused",
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_images_are_refused_with_a_clear_sentence_and_nothing_is_left_behind(home, tmp_path, monkeypatch, case):
    monkeypatch.setattr(own_import, "MAX_UNPACKED_BYTES", 2 * 2**20)
    source = bad_folder(tmp_path, case)
    with pytest.raises(DataImportError) as caught:
        import_images(source, "bad")
    assert BAD[case] in str(caught.value)
    assert leftovers(home) == []  # not even a staging folder
    assert not (tmp_path / "evil.sh").exists() and not (home / "evil.sh").exists()
    assert "bad" not in DATASETS


def test_names_are_checked_before_anything_is_written(home, tmp_path):
    source = write_folder(tmp_path / "pets")
    for name, message in (("Pets!", "is not accepted"), ("shapes", "already exists"), ("../up", "is not accepted")):
        with pytest.raises(DataImportError, match=message):
            import_images(source, name)
    import_images(source, "pets")
    with pytest.raises(DataImportError, match="'pets' already exists"):
        import_images(source, "pets")


# ----- tables ----------------------------------------------------------------

def table_csv(n=60, extra=""):
    rng = np.random.RandomState(0)
    lines = ["height,weight,age" + extra + ",price,kind"]
    for i in range(n):
        h, w, a = rng.uniform(1, 2), rng.uniform(40, 120), rng.randint(18, 80)
        kind = "big" if w > 80 else "small"
        lines.append(f"{h:.3f},{w:.1f},{a}" + (",x" if extra else "") + f",{3 * w + a:.2f},{kind}")
    return ("\n".join(lines) + "\n").encode()


def test_a_plain_csv_becomes_a_vector_dataset_that_trains(home):
    seen = preview(table_csv())
    assert seen.kind == "table"
    assert {c.name: c.suggested for c in seen.columns}["kind"] == "classification"
    import_table(table_csv(), "people", targets=["price", "kind"])
    info = dataset_info("people")
    assert info.input_kind == "vector" and info.preprocess is None
    data = load_dataset("people")
    assert data.input_shape == (3,)  # height, weight, age
    assert abs(float(data.train.x.mean())) < 0.1  # standardised with the training split
    result = fit(ExperimentConfig.from_flat({
        "dataset.name": "people", "tasks": "price,kind", "train.epochs": 1, "device": "cpu",
    }))
    assert set(result.summary["test"]) == {"price", "kind"}


def test_text_in_a_feature_column_is_refused_unless_it_is_left_out(home):
    with pytest.raises(DataImportError, match="feature column 'note' holds 'x' in row 2"):
        import_table(table_csv(extra=",note"), "people", targets=["price", "kind"])
    import_table(table_csv(extra=",note"), "people", targets=["price", "kind"], kinds={"note": "ignore"})
    assert load_dataset("people").input_shape == (3,)


def test_a_text_column_cannot_be_a_regression_task(home):
    with pytest.raises(DataImportError, match="'kind' holds 'big' in row 2, which is not a number, so it can only be a classification task"):
        import_table(table_csv(), "people", targets=["kind"], kinds={"kind": "regression"})
    assert leftovers(home) == []


# ----- the Data page ----------------------------------------------------------

def test_the_data_page_lists_every_dataset_says_what_is_missing_and_deletes_imports(home, tmp_path):
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    from mtlcore.owners import Owner, new_key

    # Only whoever imported a dataset (this browser's key) or the teacher may delete it: import it as this browser.
    key = new_key()
    import_images(write_folder(tmp_path / "pets"), "pets", owner=Owner.from_key("anonymous", key))
    page = str(Path(__file__).resolve().parents[1] / "views" / "data.py")
    at = AppTest.from_file(page, default_timeout=60)
    at.session_state["owner_key"] = key
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    listed = at.dataframe[0].value
    assert {"shapes", "cifar10", "celeba", "pets"} <= set(listed["dataset"])
    captions = " ".join(c.value for c in at.caption)
    assert "CIFAR-10 is not in the data folder: place data_batch_1" in captions
    assert any(b.key == "data_download_cifar10" for b in at.button)
    at.checkbox(key="data_sure_pets").check().run()
    at.button(key="data_delete_pets").click().run()
    assert not at.exception
    assert "pets" not in set(at.dataframe[0].value["dataset"]) and leftovers(home) == []


# ----- bounded imports (issue 14) -------------------------------------------------

def wide_csv(columns, rows=12):
    header = ",".join(f"c{j}" for j in range(columns))
    return (header + "\n" + "\n".join(",".join(str((i + j) % 7) for j in range(columns)) for i in range(rows))
            + "\n").encode()


def test_a_csv_wider_than_the_limit_is_refused_from_its_header():
    from mtlcore.data.own_labels import MAX_COLUMNS

    with pytest.raises(DataImportError, match=f"has {MAX_COLUMNS + 1} columns; at most {MAX_COLUMNS} are accepted"):
        preview(wide_csv(MAX_COLUMNS + 1))
    assert len(preview(wide_csv(MAX_COLUMNS)).columns) == MAX_COLUMNS  # the limit itself is fine


def test_a_labels_csv_with_too_many_rows_is_refused_at_the_row_after_the_limit(monkeypatch, tmp_path):
    from mtlcore.data import own_labels

    monkeypatch.setattr(own_labels, "MAX_ROWS", 40)
    folder = write_folder(tmp_path / "pets", n=30)
    rows = (folder / "labels.csv").read_text().splitlines()[1:]
    (folder / "labels.csv").write_text("\n".join(["file,color,brightness", *(rows * 2)]) + "\n")  # 60 rows
    with pytest.raises(DataImportError, match="labels.csv has more than 40 rows of data; at most 40 are accepted"):
        preview(zip_folder(folder))


def test_a_table_with_too_many_cells_is_refused(monkeypatch):
    from mtlcore.data import own_labels

    monkeypatch.setattr(own_labels, "MAX_CELLS", 100)
    with pytest.raises(DataImportError, match="more than 100 cells"):
        preview(table_csv())


def test_a_zipped_labels_csv_that_unpacks_too_large_is_refused_before_it_is_read(monkeypatch, tmp_path):
    monkeypatch.setattr(own_import, "MAX_CSV_BYTES", 200)
    upload = zip_folder(write_folder(tmp_path / "pets", n=30))
    read = []
    real_open = zipfile.ZipFile.open
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda self, *a, **k: read.append(a) or real_open(self, *a, **k))
    with pytest.raises(DataImportError, match=r"labels.csv unpacks to 1 KB; the limit is 1 KB"):
        preview(upload)
    assert read == []  # refused from the zip's directory, nothing unpacked


def test_a_csv_larger_than_the_upload_limit_is_refused_before_parsing(monkeypatch, tmp_path):
    monkeypatch.setattr(own_import, "MAX_CSV_BYTES", 1000)
    path = tmp_path / "big.csv"
    path.write_bytes(table_csv())
    with pytest.raises(DataImportError, match=r"The CSV file is \d KB; the limit is 1 KB"):
        preview(path)


@pytest.mark.parametrize("name", ["=HYPERLINK(\"http://x\")", "+1", "-price", "@SUM(A1)"])
def test_task_names_that_spreadsheets_would_run_as_formulas_are_refused(home, name):
    data = table_csv().replace(b",price,", f",{name},".encode(), 1)
    with pytest.raises(DataImportError, match="starts with .* which spreadsheets run as a formula"):
        import_table(data, "people", targets=[name])
    assert leftovers(home) == []


def test_the_server_upload_limit_and_the_importer_limit_are_one_number():
    from helpers import streamlit_settings

    assert streamlit_settings()["server"]["maxUploadSize"] == own_import.MAX_UPLOAD_MB
    assert own_import.MAX_ARCHIVE_BYTES == own_import.MAX_UPLOAD_MB * 2**20


def test_staging_folders_left_by_a_killed_import_are_removed_on_start(home, monkeypatch):
    root = home / "datasets"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()  # a process id that has just ended
    leftover = [root / f".import-{dead}-k1ll3d", root / ".importabc123", root / ".deleted-pets-1a2b3c4d"]
    leftover[1] = root / ".import-abc123"  # the name older versions gave, without a process id
    live = root / f".import-{os.getpid()}-working"
    for folder in [*leftover, live]:
        (folder / "unpacked").mkdir(parents=True)
        (folder / "unpacked" / "pic.png").write_bytes(b"x")
    refresh_datasets()
    assert leftovers(home) == [live.name]  # an import still at work in a live process is kept


def test_an_import_can_be_cancelled_midway_and_keeps_nothing(home, tmp_path):
    source = write_folder(tmp_path / "pets", n=30)
    seen = []

    def progress(fraction, message):
        seen.append((fraction, message))

    with pytest.raises(own_import.ImportCancelled, match="'pets' was cancelled; nothing of it was kept"):
        import_images(zip_folder(source), "pets", progress=progress,
                      cancelled=lambda: bool(seen) and seen[-1][1] == "Checking image 5 of 30")
    assert seen[-1][1] == "Checking image 5 of 30"  # it stopped at the next step
    assert [f for f, _ in seen] == sorted(f for f, _ in seen) and 0.3 < seen[-1][0] < 0.5
    assert leftovers(home) == [] and "pets" not in DATASETS


def test_an_import_runs_in_a_background_job_with_progress_and_a_cancel(home, tmp_path):
    from mtlcore.data.import_job import ImportJob

    source = write_folder(tmp_path / "pets", n=30)
    job = ImportJob.start(import_images, zip_folder(source), "pets")
    assert job.wait(60) and job.error is None
    assert job.fraction == 1.0 and job.result.name == "pets" and "pets" in DATASETS

    cancelled = ImportJob(import_images, zip_folder(source), "pets2")
    cancelled.cancel()  # before its first file
    assert cancelled.begin().wait(60)
    assert cancelled.cancelled and "cancelled" in cancelled.error
    assert "pets2" not in DATASETS and leftovers(home) == ["pets"]


def test_the_data_page_shows_a_running_import_with_progress_and_a_cancel_button(home):
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    class Running:  # a job that is still at work
        done, fraction, message, error = False, 0.4, "Checking image 12 of 30", None
        cancel_called = False

        def cancel(self):
            Running.cancel_called = True

    page = str(Path(__file__).resolve().parents[1] / "views" / "data.py")
    at = AppTest.from_file(page, default_timeout=60)
    at.session_state["data_import_job"] = Running()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(b.key == "data_import_cancel" for b in at.button)
    at.button(key="data_import_cancel").click().run()
    assert Running.cancel_called
