"""The two-objective toy of Liu et al. (CAGrad, NeurIPS 2021) for the gradient playground.

    >>> from mtlcore.toy import ToyComparison, loss_grid, pareto_set
    >>> comparison = ToyComparison(["equal", "famo"], steps=2000).start()

``problem``: the losses, their gradients, the Pareto set. ``trajectories``:
paths from the five starts through the engine's own weighting methods,
batched. ``live``: the same in the background (processes of their own, or a
thread), for a page.
``figures``: Plotly figures. No Streamlit here.
"""
from .live import ToyComparison, measure_step_costs, start_process_server, update_directions, warm_up
from .problem import (
    EXTENT, FIRST_LOSS_SCALE, LEARNING_RATE, STARTS, STEPS, distance_to_pareto_set, loss_grid, objectives_at,
    pareto_set, task_gradients,
)
from .trajectories import (
    REACHED_TOLERANCE, Trajectories, ToyOptimisation, joint_optimizer, step_together, toy_methods, trajectories,
)

__all__ = [
    "EXTENT", "FIRST_LOSS_SCALE", "LEARNING_RATE", "REACHED_TOLERANCE", "STARTS", "STEPS", "ToyComparison",
    "ToyOptimisation", "Trajectories", "distance_to_pareto_set", "joint_optimizer", "loss_grid", "measure_step_costs",
    "objectives_at",
    "pareto_set", "start_process_server", "step_together", "task_gradients", "toy_methods", "trajectories",
    "update_directions", "warm_up",
]
