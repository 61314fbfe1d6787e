"""Loaded once by the server that forks the Gradients page's computing processes (``live.process_context``).

Importing this module pays what a comparison's first step would otherwise
pay in every new process: PyTorch, the engine's weighting methods and their
solvers load, and each method takes two steps (``live.warm_up``). The
standard library's forkserver imports it before it forks anything, so each
process it forks starts with all of that done, in a fraction of a second.
Nothing else should import it.
"""
from .live import warm_up
from .trajectories import toy_methods

warm_up(toy_methods())
