"""Architectures: outputs per task, what is shared, the soft-sharing penalty."""
import pytest
import torch

from mtlcore.config import ExperimentConfig
from mtlcore.data import TaskSpec
from mtlcore.models import ARCHITECTURES, build_model

TASKS = [
    TaskSpec("shape", "classification", 4, ("a", "b", "c", "d")),
    TaskSpec("size", "regression"),
    TaskSpec("color", "classification", 3, ("r", "g", "b")),
]


def make(arch, tasks=TASKS, input_shape=(3, 32, 32), kind="image", **flat):
    config = ExperimentConfig.from_flat({"model.arch": arch, "model.width": "8", **flat})
    torch.manual_seed(0)
    return build_model(config, tasks, kind, input_shape)


@pytest.mark.parametrize("arch", ["hard", "soft", "cross_stitch", "mmoe"])
@pytest.mark.parametrize("input_shape, kind", [((3, 32, 32), "image"), ((1, 8, 8), "image"), ((20,), "vector")])
def test_every_architecture_gives_one_output_per_task(arch, input_shape, kind):
    model = make(arch, input_shape=input_shape, kind=kind)
    out = model(torch.randn(5, *input_shape))
    assert set(out) == {"shape", "size", "color"}
    assert out["shape"].shape == (5, 4)
    assert out["size"].shape == (5, 1)
    assert out["color"].shape == (5, 3)


def test_single_task_baseline():
    model = make("single", tasks=TASKS[:1])
    assert set(model(torch.randn(2, 3, 32, 32))) == {"shape"}


def test_every_registered_architecture_is_tested():
    assert set(ARCHITECTURES.names()) == {"hard", "soft", "cross_stitch", "mmoe", "single"}


def ids(params):
    return {id(p) for p in params}


def test_hard_sharing_shares_the_trunk_and_not_the_heads():
    model = make("hard")
    shared = ids(model.shared_parameters())
    assert shared == ids(model.trunk.parameters())
    for task in ("shape", "size", "color"):
        assert not shared & ids(model.task_parameters(task))
    # Every parameter is either shared or belongs to exactly one task.
    all_task = [ids(model.task_parameters(t)) for t in ("shape", "size", "color")]
    assert shared | set().union(*all_task) == ids(model.parameters())


def test_a_task_loss_reaches_only_its_head_and_the_shared_trunk():
    model = make("hard")
    model(torch.randn(4, 3, 32, 32))["size"].sum().backward()
    assert all(p.grad is not None for p in model.task_parameters("size"))
    assert all(p.grad is None for p in model.task_parameters("shape"))
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.shared_parameters())


def test_soft_sharing_shares_nothing_and_mmoe_shares_experts():
    soft = make("soft")
    assert soft.shared_parameters() == []
    assert not ARCHITECTURES.get("soft").has_shared_parameters
    mmoe = make("mmoe", **{"model.num_experts": "3"})
    assert ids(mmoe.shared_parameters()) == ids(mmoe.experts.parameters())
    assert len(mmoe.experts) == 3
    gates = mmoe.gate_weights(torch.randn(2, 3, 32, 32))
    assert torch.allclose(gates["shape"].sum(-1), torch.ones(2))


def test_cross_stitch_starts_near_identity():
    model = make("cross_stitch")
    alpha = model.stitches[0].alpha.detach()
    assert torch.allclose(alpha.diagonal(), torch.full((3,), 0.9))
    assert torch.allclose(alpha.sum(dim=1), torch.ones(3))


def test_soft_penalty_is_zero_for_identical_columns_and_grows_with_distance():
    model = make("soft", **{"reg.soft_lambda": "0.5"})
    first = model.columns["shape"].state_dict()
    for task in ("size", "color"):
        model.columns[task].load_state_dict(first)
    assert float(model.penalty().detach()) == pytest.approx(0.0)
    penalties = []
    for scale in (0.01, 0.1, 1.0):
        with torch.no_grad():
            model.columns["size"].load_state_dict(first)
            for p in model.columns["size"].parameters():
                if p.dim() > 1:
                    p.add_(scale)
        penalties.append(float(model.penalty().detach()))
    assert 0 < penalties[0] < penalties[1] < penalties[2]
    # lambda scales it linearly
    assert float(model.penalty().detach()) == pytest.approx(0.5 * float(model.distance().detach()))


def test_soft_l1_norm():
    model = make("soft", **{"reg.soft_norm": "l1"})
    assert float(model.distance().detach()) > 0


def test_batchnorm_and_dropout_switches():
    with_bn = make("hard", **{"reg.batchnorm": "true", "reg.dropout": "0.3"})
    without = make("hard", **{"reg.batchnorm": "false"})
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in with_bn.modules())
    assert any(isinstance(m, torch.nn.Dropout) for m in with_bn.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in without.modules())


# ----- what "shared" means, checked by back-propagating each task alone --------------

def reached_by_each_task(model, x):
    """{task: ids of the parameters that task's loss alone gives a non-zero gradient}."""
    reached = {}
    for task in model.task_names:
        model.zero_grad(set_to_none=True)
        out = model(x)[task]
        torch.manual_seed(1)
        (out * torch.randn_like(out)).sum().backward()  # a loss whose gradient reaches all of out
        reached[task] = {id(p) for p in model.parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    return reached


@pytest.mark.parametrize("arch", ARCHITECTURES.names())
@pytest.mark.parametrize("input_shape, kind", [((1, 8, 8), "image"), ((20,), "vector")])
def test_shared_parameters_are_exactly_those_that_more_than_one_task_reaches(arch, input_shape, kind):
    # soft sharing: each task's loss reaches its own column only (the penalty is no task's loss), so nothing is shared.
    tasks = TASKS[:1] if arch == "single" else TASKS
    model = make(arch, tasks=tasks, input_shape=input_shape, kind=kind, **{"model.num_experts": "3"})
    reached = reached_by_each_task(model, torch.randn(6, *input_shape))
    shared = ids(model.shared_parameters())
    names = {id(p): name for name, p in model.named_parameters()}
    for task, params in reached.items():
        # A "shared" parameter that some task's loss does not reach would be rescaled for nothing by MGDA & co.
        assert not {names[i] for i in shared - params}, f"shared but not reached by {task}"
    for name, p in model.named_parameters():
        by = [t for t, params in reached.items() if id(p) in params]
        if len(by) >= 2:
            assert id(p) in shared, f"{name} is reached by {by} but not listed as shared"
        elif id(p) not in shared:
            # Not shared: it belongs to exactly the one task that reaches it.
            owners = [t.name for t in tasks if id(p) in ids(model.task_parameters(t.name))]
            assert owners == by, f"{name} belongs to {owners} and is reached by {by}"


def test_cross_stitch_columns_last_stage_belongs_to_its_own_task():
    model = make("cross_stitch", input_shape=(20,), kind="vector")
    last = ids(model.columns["size"].stages[-1].parameters())
    assert last <= ids(model.task_parameters("size"))
    assert not last & ids(model.shared_parameters())
    # The L1 regulariser still acts on the whole columns.
    assert last <= ids(model.trunk_parameters())


@pytest.mark.parametrize("arch", ["hard", "cross_stitch", "mmoe"])
def test_the_last_shared_layer_is_shared_and_every_task_reaches_it(arch):
    model = make(arch, input_shape=(20,), kind="vector", **{"model.num_experts": "3"})
    layer = ids(model.last_shared_layer())
    assert layer and layer <= ids(model.shared_parameters())
    reached = reached_by_each_task(model, torch.randn(6, 20))
    assert all(layer <= params for params in reached.values())


def test_the_last_shared_layer_spans_every_expert_and_every_column_not_the_mixing_units():
    mmoe = make("mmoe", input_shape=(20,), kind="vector", **{"model.num_experts": "4"})
    layer = ids(mmoe.last_shared_layer())
    assert all(layer & ids(expert.parameters()) for expert in mmoe.experts)  # 4 of 4 experts, not the last one only
    stitch = make("cross_stitch", input_shape=(20,), kind="vector")
    layer = ids(stitch.last_shared_layer())
    assert all(layer & ids(column.parameters()) for column in stitch.columns.values())
    assert not layer & ids(stitch.stitches.parameters())
    assert make("soft").last_shared_layer() == []
