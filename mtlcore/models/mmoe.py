"""Multi-gate Mixture-of-Experts (Ma, Zhao, Yi, Chen, Hong & Chi, KDD 2018).

E experts (trunks) are shared by all tasks; each task has its own softmax
gate that looks at the input and mixes the experts' outputs:

    f_t(x) = sum_e g_t(x)_e * expert_e(x),   g_t(x) = softmax(W_t x)

followed by the task's head ("tower"). Tasks that disagree can learn to use
different experts, so MMoE degrades less than hard sharing when tasks are
less related.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .base import ARCHITECTURES, MultiTaskModel, TrunkFactory, last_weights


@ARCHITECTURES.register("mmoe")
class MMoE(MultiTaskModel):
    summary = "Shared experts; each task's gate chooses its own mix of them."
    uses = ("model.num_experts", "model.expert_hidden")

    def __init__(self, tasks: dict[str, int], make_trunk: TrunkFactory,
                 input_shape: tuple[int, ...] = (), num_experts: int = 4, head_hidden: int = 0,
                 make_expert: TrunkFactory | None = None, **_):
        super().__init__(tasks)
        # make_expert: the experts' own size (Ma et al.'s 16-unit experts against a 113-unit shared
        # bottom, so both models have about the same parameters); by default, the trunk's.
        self.experts = nn.ModuleList((make_expert or make_trunk)() for _ in range(num_experts))
        in_features = int(math.prod(input_shape))
        self.gates = nn.ModuleDict({t: nn.Linear(in_features, num_experts) for t in tasks})
        self.heads = self.make_heads(self.experts[0].out_features, tasks, head_hidden)

    def gate_weights(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each task's softmax over experts, N x E (shown in the app)."""
        flat = x.flatten(1)
        return {t: torch.softmax(gate(flat), dim=-1) for t, gate in self.gates.items()}

    def forward(self, x):
        expert_out = torch.stack([expert(x) for expert in self.experts], dim=1)  # N x E x F
        outputs = {}
        for task, gate in self.gate_weights(x).items():
            mixed = (gate.unsqueeze(-1) * expert_out).sum(dim=1)
            outputs[task] = self.heads[task](mixed)
        return outputs

    def shared_parameters(self) -> list[nn.Parameter]:
        return list(self.experts.parameters())

    def task_parameters(self, task: str) -> list[nn.Parameter]:
        return list(self.gates[task].parameters()) + list(self.heads[task].parameters())

    def last_shared_layer(self) -> list[nn.Parameter]:
        """Every expert's last layer: the experts run side by side, so each is a last shared layer."""
        return [p for expert in self.experts for p in last_weights(expert.parameters())]
