"""Compare's verdict follows the three-way rule of mtlcore.verdicts (one seed, a clear gap, noise),
and one click queues more seeds of the multi-task run and its baselines.

Runs are recorded as finished with made-up test metrics (no training), so
the numbers, and therefore the verdicts, are known exactly.
"""
import sys
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from mtlcore import ExperimentConfig
from mtlcore.compare import baseline_config
from mtlcore.runs import Runner, RunStore

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the pages import ui.session from the project root
    sys.path.insert(0, str(ROOT))
COMPARE = str(ROOT / "views" / "compare.py")


def tiny(**flat) -> ExperimentConfig:
    settings = {"dataset.name": "shapes", "dataset.n_samples": 300, "train.max_samples": 100,
                "train.epochs": 1, "device": "cpu", "tasks": "shape,size", "model.width": 8, **flat}
    return ExperimentConfig.from_flat(settings)


def finished(store: RunStore, config: ExperimentConfig, label: str, test: dict) -> str:
    run = store.add_run(config, label=label, owner="teacher")
    store.finish_run(run.id, "finished", summary={"test": test})
    return run.id


def fill(store: RunStore, seeds: dict[int, tuple[float, float, float, float]]) -> str:
    """Per seed: (MTL shape accuracy, MTL size MAE, STL shape accuracy, STL size MAE). Returns seed 0's MTL id."""
    first = None
    for seed, (mtl_acc, mtl_mae, stl_acc, stl_mae) in seeds.items():
        config = tiny(seed=seed)
        finished(store, baseline_config(config, "shape"), f"s{seed} · STL shape", {"shape": {"accuracy": stl_acc}})
        finished(store, baseline_config(config, "size"), f"s{seed} · STL size", {"size": {"mae": stl_mae}})
        run_id = finished(store, config, f"demo s{seed}", {"shape": {"accuracy": mtl_acc}, "size": {"mae": mtl_mae}})
        first = first or run_id
    return first


@pytest.fixture
def page(tmp_path, monkeypatch):
    """Open Compare on a fresh store filled by ``fill``; a runner with no workers only queues."""
    def open_page(seeds):
        home = tmp_path / "home"
        monkeypatch.setenv("MTL_HOME", str(home))
        st.cache_resource.clear()
        st.cache_data.clear()
        store = RunStore(home)
        run_id = fill(store, seeds)
        import ui.session
        monkeypatch.setattr(ui.session, "get_runner", lambda: Runner(RunStore(home), max_workers=0))
        at = AppTest.from_file(COMPARE, default_timeout=60)
        at.query_params["run"] = run_id
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at, store
    yield open_page
    st.cache_resource.clear()
    st.cache_data.clear()


def words(at) -> str:
    return "\n".join(str(m.value) for m in at.markdown)


def test_one_seed_is_not_a_verdict_even_with_a_large_difference(page):
    at, _ = page({0: (0.40, 3.0, 0.90, 1.0)})  # multi-task far worse, but one seed
    text = words(at)
    assert "One seed: not enough to tell" in text
    assert "negative transfer" not in text and ":red[" not in text  # no red verdict from one seed
    assert at.metric[0].value.startswith("+")  # Delta_m still shown, with the paper's sign


def test_several_seeds_with_a_clear_gap_say_sharing_helps(page):
    at, _ = page({s: (0.80 + 0.01 * s, 0.80, 0.70 + 0.01 * s, 1.00) for s in range(3)})
    text = words(at)
    assert "Sharing helps" in text and "over 3 seeds" in text and "95% interval" in text
    assert "mean of 3 seeds" in at.metric[0].label
    assert "over 3 seeds: multi-task" in text  # each task's mean ± std over the seeds


def test_several_seeds_within_noise_say_so(page):
    at, _ = page({0: (0.81, 1.0, 0.78, 1.0), 1: (0.75, 1.0, 0.78, 1.0), 2: (0.79, 1.0, 0.77, 1.0)})
    text = words(at)
    assert "Within noise" in text
    assert "Sharing helps" not in text and "Sharing hurts" not in text


def test_add_seeds_queues_the_missing_seeds_and_their_baselines_as_one_batch(page):
    at, store = page({0: (0.80, 1.0, 0.70, 1.2)})
    assert at.number_input(key="compare_seed_count").value == 3
    button = at.button(key="compare_add_seeds")
    assert "queue 6 runs" in button.label  # seeds 1 and 2: the multi-task run and two baselines each
    button.click().run()
    assert not at.exception
    queued = store.list_runs(states=["queued"])
    assert sorted(r.label for r in queued) == sorted(
        f"demo s0 · seed {s}{what}" for s in (1, 2) for what in ("", " · STL shape", " · STL size"))
    assert [r.config for r in queued if r.label.endswith("seed 2")] == [tiny(seed=2)]
    assert baseline_config(tiny(seed=1), "size") in [r.config for r in queued]
    at.run()  # queued runs count as there: nothing more to add
    assert at.button(key="compare_add_seeds").disabled
