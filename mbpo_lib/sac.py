"""Soft Actor-Critic (Haarnoja et al. 2018), the policy optimiser inside MBPO.

SAC maximises return plus entropy,
:math:`J(\\pi) = \\sum_t \\mathbb E\\,[r_t + \\alpha\\,\\mathcal H(\\pi(\\cdot\\mid s_t))]`,
with three learned pieces, all updated from one batch :math:`(s, a, r, s', d)`:

* **twin critics** :math:`Q_{\\phi_1}, Q_{\\phi_2}` regress on the soft Bellman target built
  from slowly moving *target* critics :math:`\\bar\\phi_i`, with :math:`a' \\sim \\pi(\\cdot\\mid s')`,

  .. math:: y = c\\,r + \\gamma\\,(1 - d)\\,
     \\big[\\min_i Q_{\\bar\\phi_i}(s', a') - \\alpha \\log\\pi(a'\\mid s')\\big],
     \\qquad L_Q = \\tfrac12 \\sum_i \\operatorname{mean}\\,(Q_{\\phi_i}(s, a) - y)^2,

  where :math:`d` is Gymnasium's ``terminated`` (a time-limit ``truncated`` still bootstraps)
  and :math:`c` the reward scale;
* a **tanh-squashed Gaussian actor**, :math:`a = \\tanh(u)`,
  :math:`u = \\mu_\\theta(s) + \\sigma_\\theta(s)\\,\\varepsilon`,
  :math:`\\varepsilon \\sim \\mathcal N(0, I)`, whose density follows from the change of variables

  .. math:: \\log\\pi(a\\mid s) = \\log\\mathcal N(u;\\mu,\\sigma^2) - \\sum_j \\log(1 - \\tanh^2 u_j),
     \\qquad \\log(1 - \\tanh^2 u) = 2\\,(\\log 2 - u - \\operatorname{softplus}(-2u)),

  trained by the reparameterised
  :math:`L_\\pi = \\operatorname{mean}\\,[\\alpha \\log\\pi(a\\mid s) - \\min_i Q_{\\phi_i}(s, a)]`;
* the **temperature** :math:`\\alpha = e^{\\log\\alpha}`, tuned so the policy's entropy tracks
  a target :math:`\\bar{\\mathcal H}`:
  :math:`L_\\alpha = -\\log\\alpha\\,\\operatorname{mean}[\\log\\pi(a\\mid s) + \\bar{\\mathcal H}]`.
  Its gradient is :math:`\\mathcal H - \\bar{\\mathcal H}`: entropy below target raises
  :math:`\\alpha`, above target lowers it.

After each step the targets follow by Polyak averaging,
:math:`\\bar\\phi \\leftarrow (1-\\tau)\\bar\\phi + \\tau\\phi`.

As in the official MBPO code (softlearning, one ``session.run`` of all training ops), the three
losses are computed from the parameters at the start of the update and all parameters take their
Adam step together. That lets one backward pass serve all three losses: the actor's loss reads
the critics through *detached* weights, so no critic weight gradient is computed for it, and the
two critics run as one batched network (weights ``[2, in, out]``, one ``baddbmm`` per layer).
One fused Adam call updates every tensor, one ``_foreach_lerp_`` moves every target tensor.
``SACConfig(matmul_precision="medium")`` lets the matrix products of acting and learning run
in a faster format (:mod:`mbpo_lib.precision`); the default keeps float32 products.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .config import SACConfig
from .precision import matmul_precision

if TYPE_CHECKING:  # sac stands alone: the Batch type is only named, never imported at run time
    from .buffer import Batch

BATCH_FIELDS = ("obs", "act", "rew", "next_obs", "terminated")
_LOG_2 = math.log(2.0)
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def _uniform_(tensor: torch.Tensor, fan_in: int, generator: torch.Generator | None) -> torch.Tensor:
    """PyTorch's default ``nn.Linear`` initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), seeded."""
    bound = 1.0 / math.sqrt(fan_in)
    with torch.no_grad():
        return tensor.uniform_(-bound, bound, generator=generator)


def tanh_log_prob(pre_tanh: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """``log pi(tanh(u))`` for ``u ~ N(mean, exp(log_std)^2)``, summed over the last dimension.

    The change of variables ``a = tanh(u)`` subtracts ``log(1 - tanh(u)^2)``, computed in the
    stable form ``2 (log 2 - u - softplus(-2u))`` (no ``log(0)`` when ``tanh`` saturates).
    ``pre_tanh``, ``mean``, ``log_std``: ``[..., act_dim]``; returns ``[...]``.
    """
    z = (pre_tanh - mean) * torch.exp(-log_std)
    gaussian = -0.5 * z ** 2 - log_std - _HALF_LOG_2PI
    squash = 2.0 * (_LOG_2 - pre_tanh - F.softplus(-2.0 * pre_tanh))
    return (gaussian - squash).sum(-1)


class TanhGaussianActor(nn.Module):
    """The policy: an MLP giving ``mean`` and ``log_std`` of a Gaussian over ``u``; ``a = tanh(u)``.

    ReLU hidden layers, one linear head of ``2 * act_dim`` outputs (mean, then log-std);
    ``log_std`` is clipped to ``[log_std_min, log_std_max]``. Actions lie in ``(-1, 1)``.

    Weights: ``weights[i]`` is ``[in, out]`` for the hidden layers (``h @ W + b``) and the head
    is ``[out, in]`` (``h @ W.T + b``, as ``nn.Linear``). With these layouts every matrix
    product of the forward and backward pass that has a narrow side (11 observations in, 6
    outputs) is one BLAS handles well; with the other layout the narrow weight-gradient and
    output products ran 3-5x slower (MKL on a 2-core AMD EPYC, measured for this module).
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden_sizes: Sequence[int] = (256, 256),
                 log_std_min: float = -20.0, log_std_max: float = 2.0,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.log_std_min, self.log_std_max = float(log_std_min), float(log_std_max)
        sizes = [obs_dim, *hidden_sizes]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for a, b in zip(sizes[:-1], sizes[1:], strict=True):
            self.weights.append(nn.Parameter(_uniform_(torch.empty(a, b), a, generator)))
            self.biases.append(nn.Parameter(_uniform_(torch.empty(b), a, generator)))
        last = sizes[-1]
        self.head_weight = nn.Parameter(_uniform_(torch.empty(2 * act_dim, last), last, generator))
        self.head_bias = nn.Parameter(_uniform_(torch.empty(2 * act_dim), last, generator))

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``obs [B, obs_dim]`` -> ``(mean, log_std)``, each ``[B, act_dim]``."""
        h = obs
        for w, b in zip(self.weights, self.biases, strict=True):
            # In place: the product's backward needs its inputs, not this output (the ReLU's does,
            # and gets it), so one [B, hidden] buffer less per layer; 7 % of an update on the CPU.
            h = torch.addmm(b, h, w).relu_()
        mean, log_std = F.linear(h, self.head_weight, self.head_bias).chunk(2, dim=-1)
        return mean, log_std.clamp(self.log_std_min, self.log_std_max)

    def sample(self, obs: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterised action and its log-probability: ``(a [B, act_dim], log_pi [B])``.

        ``noise [B, act_dim]`` is the standard normal draw. Since ``(u - mean) / std`` is
        exactly ``noise``, the Gaussian term is ``-noise^2 / 2 - log_std - log(2 pi) / 2``, which
        is :func:`tanh_log_prob` with fewer operations (the same value and gradient).
        """
        mean, log_std = self(obs)
        u = torch.addcmul(mean, log_std.exp(), noise)
        # -log pi = sum_j [noise^2/2 + log_std + log(2 pi)/2 + 2 log 2 - 2 (u + softplus(-2u))]
        neg = (0.5 * noise.square() + log_std - 2.0 * (u + F.softplus(-2.0 * u))).sum(-1)
        log_pi = -neg - self.act_dim * (_HALF_LOG_2PI + 2.0 * _LOG_2)
        return torch.tanh(u), log_pi


class TwinCritic(nn.Module):
    """``copies`` Q-networks ``Q_i(s, a)`` run as one batched MLP.

    ``forward(obs [B, obs_dim], act [B, act_dim]) -> q [copies, B]``. Hidden layers hold
    weights ``[copies, in, out]`` and run as one ``baddbmm`` for all copies; the scalar output
    layer holds ``[copies, 1, hidden]`` and is a multiply-and-sum (a matrix product with one
    output column is the slowest shape for BLAS). Each copy has its own weights, initialised
    independently like an ``nn.Linear``.
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden_sizes: Sequence[int] = (256, 256),
                 copies: int = 2, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.obs_dim, self.act_dim, self.copies = obs_dim, act_dim, copies
        sizes = [obs_dim + act_dim, *hidden_sizes]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for a, b in zip(sizes[:-1], sizes[1:], strict=True):
            self.weights.append(nn.Parameter(_uniform_(torch.empty(copies, a, b), a, generator)))
            self.biases.append(nn.Parameter(_uniform_(torch.empty(copies, 1, b), a, generator)))
        last = sizes[-1]
        self.out_weight = nn.Parameter(_uniform_(torch.empty(copies, 1, last), last, generator))
        self.out_bias = nn.Parameter(_uniform_(torch.empty(copies, 1), last, generator))

    def forward(self, obs: torch.Tensor, act: torch.Tensor, detach: bool = False) -> torch.Tensor:
        """Q-values ``[copies, B]``. ``detach=True`` reads the weights without recording
        gradients for them (gradients still flow to ``act``): the actor's loss uses this."""
        params = [*self.weights, *self.biases, self.out_weight, self.out_bias]
        if detach:
            params = [p.detach() for p in params]
        n = len(self.weights)
        weights, biases, out_weight, out_bias = params[:n], params[n:2 * n], params[-2], params[-1]
        x = torch.cat([obs, act], dim=-1)
        h = x.unsqueeze(0).expand(self.copies, *x.shape)
        for w, b in zip(weights, biases, strict=True):
            h = torch.baddbmm(b, h, w).relu_()          # in place, as in the actor
        return (h * out_weight).sum(-1) + out_bias


def _adam(groups: list[dict[str, Any]], capturable: bool = False) -> torch.optim.Adam:
    """Adam over ``groups`` with the fused kernel (one call for every tensor) where this torch
    offers it on the device, else the multi-tensor one."""
    try:
        return torch.optim.Adam(groups, fused=True, capturable=capturable)
    except (RuntimeError, ValueError, TypeError):   # e.g. torch < 2.4 on the CPU: no fused Adam
        return torch.optim.Adam(groups, foreach=True, capturable=capturable)


class _CapturedUpdate(NamedTuple):
    """One whole update recorded as a CUDA graph, with the static tensors it reads and writes."""

    graph: Any                       # torch.cuda.CUDAGraph
    inputs: tuple[torch.Tensor, ...]  # obs, act, rew, next_obs, terminated, noise
    metrics: torch.Tensor


METRIC_NAMES = ("critic_loss", "actor_loss", "alpha", "entropy", "q_mean")


class SAC:
    """Soft Actor-Critic with automatic temperature (the module docstring states the losses).

    Args:
        obs_dim, act_dim: sizes of an observation and of an action (actions in ``[-1, 1]``).
        config: :class:`~mbpo_lib.config.SACConfig` (defaults: the MBPO code's settings).
        device: where the networks live (default CPU).
        seed: seeds the weights (drawn on the CPU, so every device starts from the same ones)
            and ``self.generator``, which draws the policy's noise in ``act`` and ``update``.
        compile: run :meth:`losses` through ``torch.compile`` (opt-in speed path for CUDA;
            on the CPU it works, after about 15 s of compiling, but is slower than eager).
        cuda_graph: record the whole update (losses, backward, Adam step, Polyak step) as one
            CUDA graph per batch size and replay it; CUDA only. The batch is still checked and
            the noise still drawn from ``self.generator`` outside the graph, so the parameters
            match the eager path's within float tolerance.

    ``act(obs, deterministic)`` picks actions; ``update(batch)`` takes one gradient step and
    returns its metrics; ``state_dict``/``load_state_dict`` save and restore everything,
    optimiser and generator included. The eager path (the default) is the reference.
    """

    def __init__(self, obs_dim: int, act_dim: int, config: SACConfig | None = None,
                 device: torch.device | str | None = None, seed: int = 0, *,
                 compile: bool = False, cuda_graph: bool = False) -> None:
        self.config = c = (config or SACConfig()).validate()
        for name, value in (("obs_dim", obs_dim), ("act_dim", act_dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        if cuda_graph and self.device.type != "cuda":
            raise ValueError(f"cuda_graph=True needs a CUDA device, got device={self.device}; "
                             "leave it False (the eager path) elsewhere")
        self.target_entropy = float(-act_dim if c.target_entropy is None else c.target_entropy)
        init = torch.Generator().manual_seed(seed)
        self.actor = TanhGaussianActor(obs_dim, act_dim, c.hidden_sizes, c.log_std_min, c.log_std_max,
                                       generator=init).to(self.device)
        self.critic = TwinCritic(obs_dim, act_dim, c.hidden_sizes, generator=init).to(self.device)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self._online_params = list(self.critic.parameters())   # updated in place, never replaced
        self._target_params = list(self.critic_target.parameters())
        self.log_alpha = nn.Parameter(torch.tensor(float(c.init_log_alpha), device=self.device),
                                      requires_grad=c.learn_alpha)
        groups = [{"params": list(self.critic.parameters()), "lr": c.critic_lr},
                  {"params": list(self.actor.parameters()), "lr": c.actor_lr}]
        if c.learn_alpha:
            groups.append({"params": [self.log_alpha], "lr": c.alpha_lr})
        self.optimizer = _adam(groups, capturable=cuda_graph)
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.updates = 0
        self.compiled, self.cuda_graph = bool(compile), bool(cuda_graph)
        self._losses = torch.compile(self.losses) if compile else self.losses
        self._graphs: dict[int, _CapturedUpdate] = {}

    @property
    def alpha(self) -> float:
        """The current temperature ``exp(log_alpha)``."""
        return float(self.log_alpha.detach().exp())

    # --- acting ----------------------------------------------------------------------------

    @torch.no_grad()
    def act(self, obs: Any, deterministic: bool = False, generator: torch.Generator | None = None) -> Any:
        """Actions in ``[-1, 1]`` for ``obs [obs_dim]`` or ``[B, obs_dim]``.

        Stochastic: ``tanh(mean + std * noise)``, noise from ``generator`` (default
        ``self.generator``); deterministic: ``tanh(mean)``. NumPy in gives NumPy (float32) out;
        a tensor in gives a tensor out on the input's device. One row in, one row out.
        """
        as_numpy = not isinstance(obs, torch.Tensor)
        out_device = self.device if as_numpy else obs.device
        x = torch.as_tensor(np.asarray(obs, dtype=np.float32) if as_numpy else obs,
                            dtype=torch.float32, device=self.device)
        single = x.dim() == 1
        if single:
            x = x.unsqueeze(0)
        if x.dim() != 2 or x.shape[1] != self.obs_dim:
            raise ValueError(f"obs must be [{self.obs_dim}] or [B, {self.obs_dim}], got {list(x.shape)}")
        with matmul_precision(self.config.matmul_precision, self.device):
            mean, log_std = self.actor(x)
        if not deterministic:
            g = generator or self.generator
            noise = torch.randn(mean.shape, generator=g, device=g.device).to(self.device)
            mean = torch.addcmul(mean, log_std.exp(), noise)
        action = torch.tanh(mean)
        if single:
            action = action[0]
        return action.cpu().numpy() if as_numpy else action.to(out_device)

    # --- learning --------------------------------------------------------------------------

    def _checked(self, batch: Batch | Sequence[Any], finite: bool = True) -> tuple[torch.Tensor, ...]:
        """The batch as float32 tensors on the device, shapes (and, with ``finite``, values) checked."""
        if len(batch) != len(BATCH_FIELDS):
            raise ValueError(f"a batch has {len(BATCH_FIELDS)} fields {BATCH_FIELDS}, got {len(batch)}")
        fields = [torch.as_tensor(x, dtype=torch.float32, device=self.device) for x in batch]
        obs = fields[0]
        n = obs.shape[0] if obs.dim() == 2 else -1
        widths = (self.obs_dim, self.act_dim, None, self.obs_dim, None)
        for name, x, width in zip(BATCH_FIELDS, fields, widths, strict=True):
            shape = [n] if width is None else [n, width]
            if list(x.shape) != shape or n < 1:
                wanted = "[B]" if width is None else f"[B, {width}]"
                raise ValueError(f"batch.{name} must be {wanted} with the same B >= 1 for every field, got "
                                 f"{list(x.shape)} (obs is {list(obs.shape)})")
        # One reduction per field and one host sync: a NaN or inf anywhere makes its sum non-finite.
        if finite and not bool(torch.isfinite(torch.stack([x.sum() for x in fields])).all()):
            for name, x in zip(BATCH_FIELDS, fields, strict=True):
                bad = int((~torch.isfinite(x)).sum())
                if bad:
                    raise ValueError(f"batch.{name} holds {bad} non-finite value(s) (NaN or inf); "
                                     "nothing was updated")
        return tuple(fields)

    @torch.no_grad()
    def td_target(self, rew: torch.Tensor, next_obs: torch.Tensor, terminated: torch.Tensor,
                  noise: torch.Tensor) -> torch.Tensor:
        """The critics' regression target ``y [B]`` (no gradient):
        ``c r + gamma (1 - terminated) (min_i Q_target_i(s', a') - alpha log pi(a' | s'))``
        with ``a' = tanh(mean + std * noise)``, ``noise [B, act_dim]``.

        Only ``terminated`` stops the bootstrap: a transition cut by a time limit (Gymnasium's
        ``truncated``) is stored with ``terminated = 0`` and bootstraps like any other.
        """
        c = self.config
        next_act, next_log_pi = self.actor.sample(next_obs, noise)
        next_q = self.critic_target(next_obs, next_act).amin(0)
        soft_value = next_q - self.log_alpha.detach().exp() * next_log_pi
        return torch.addcmul(c.reward_scale * rew, 1.0 - terminated, soft_value, value=c.gamma)

    def losses(self, obs: torch.Tensor, act: torch.Tensor, rew: torch.Tensor, next_obs: torch.Tensor,
               terminated: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The summed loss ``L_Q + L_pi + L_alpha`` and the metrics ``[5]`` (critic loss, actor loss,
        alpha, entropy, mean Q) for one batch, from the current parameters.

        ``noise [2, B, act_dim]``: standard normal draws for ``a ~ pi(s)`` and ``a' ~ pi(s')``.
        Each loss reaches only its own parameters, so one backward gives every gradient.
        """
        alpha = self.log_alpha.detach().exp()
        target = self.td_target(rew, next_obs, terminated, noise[1])
        q = self.critic(obs, act)                                     # [2, B]
        critic_loss = F.mse_loss(q, target.expand_as(q))              # = 1/2 sum_i mean (Q_i - y)^2
        new_act, log_pi = self.actor.sample(obs, noise[0])
        q_pi = self.critic(obs, new_act, detach=True).amin(0)
        actor_loss = (alpha * log_pi - q_pi).mean()
        mean_log_pi = log_pi.detach().mean()
        loss = critic_loss + actor_loss
        if self.config.learn_alpha:
            loss = loss - self.log_alpha * (mean_log_pi + self.target_entropy)
        metrics = torch.stack([critic_loss.detach(), actor_loss.detach(), alpha, -mean_log_pi,
                               q.detach().mean()])
        return loss, metrics

    def update(self, batch: Batch | Sequence[Any]) -> dict[str, float]:
        """One gradient step of critics, actor and temperature, then the Polyak step of the targets.

        ``batch``: a :class:`~mbpo_lib.buffer.Batch` (or any 5-sequence ``obs [B, obs_dim]``,
        ``act [B, act_dim]``, ``rew [B]``, ``next_obs [B, obs_dim]``, ``terminated [B]``).
        A wrong shape or a non-finite value raises ``ValueError`` before anything changes.
        Returns ``critic_loss``, ``actor_loss``, ``alpha`` (used in this step), ``entropy``
        (``-mean log pi``) and ``q_mean``, all measured before the step.
        """
        return dict(zip(METRIC_NAMES, self._update(self._checked(batch)).tolist(), strict=True))

    def update_on_device(self, batch: Batch | Sequence[Any]) -> torch.Tensor:
        """:meth:`update` without a host synchronisation, for hot loops (MBPO runs G = 10 to 40
        updates per env step): shapes are checked but not values, and the metrics come back as
        a ``[5]`` tensor on the device, in :data:`METRIC_NAMES` order. Same numbers as
        :meth:`update`. A NaN in the batch is not refused here: it shows up as non-finite
        metrics, which the caller sums and checks now and then (``MBPO`` at each epoch's end).
        """
        metrics = self._update(self._checked(batch, finite=False))
        return metrics.clone() if self.cuda_graph else metrics   # a graph reuses its output tensor

    def _update(self, fields: tuple[torch.Tensor, ...]) -> torch.Tensor:
        noise = torch.randn((2, fields[0].shape[0], self.act_dim), generator=self.generator,
                            device=self.device)
        metrics = self._replay(*fields, noise) if self.cuda_graph else self._step(*fields, noise)
        self.updates += 1
        return metrics

    def _step(self, *inputs: torch.Tensor) -> torch.Tensor:
        """Losses, one backward, one Adam step for every parameter, the Polyak step."""
        with matmul_precision(self.config.matmul_precision, self.device):
            loss, metrics = self._losses(*inputs)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
        self.optimizer.step()
        self._polyak()
        return metrics

    @torch.no_grad()
    def _polyak(self) -> None:
        """``target <- target + tau (online - target)``, one fused call over all tensors."""
        torch._foreach_lerp_(self._target_params, self._online_params, self.config.tau)

    # --- the CUDA-graph path ---------------------------------------------------------------

    def _replay(self, *inputs: torch.Tensor) -> torch.Tensor:
        """Copy the inputs into the captured graph's static tensors and replay it."""
        rows = inputs[0].shape[0]
        if rows not in self._graphs:
            self._graphs[rows] = self._capture(inputs)
        captured = self._graphs[rows]
        for static, value in zip(captured.inputs, inputs, strict=True):
            static.copy_(value)
        captured.graph.replay()
        return captured.metrics

    def _capture(self, example: tuple[torch.Tensor, ...]) -> _CapturedUpdate:
        """Record one update as a CUDA graph (the pattern of PyTorch's whole-network capture).

        Warm-up updates on a side stream compile the losses and create the optimiser's state;
        they change the parameters, so everything is put back before the capture, in place
        (the graph keeps the addresses of these tensors).
        """
        static = tuple(torch.zeros_like(x) for x in example)    # zeros: finite, harmless
        saved = self._snapshot()
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(3):
                self._step(*static)
        torch.cuda.current_stream(self.device).wait_stream(side)
        self._restore(saved)
        graph = torch.cuda.CUDAGraph()
        self.optimizer.zero_grad(set_to_none=True)
        with torch.cuda.graph(graph):
            metrics = self._step(*static)
        return _CapturedUpdate(graph, static, metrics)

    def _tensors(self) -> list[torch.Tensor]:
        return [*self.actor.parameters(), *self.critic.parameters(), *self.critic_target.parameters(),
                self.log_alpha]

    @torch.no_grad()
    def _snapshot(self) -> tuple[list[torch.Tensor], dict[torch.Tensor, dict[str, Any]]]:
        params = [t.detach().clone() for t in self._tensors()]
        state = {p: {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in st.items()}
                 for p, st in self.optimizer.state.items()}
        return params, state

    @torch.no_grad()
    def _restore(self, saved: tuple[list[torch.Tensor], dict[torch.Tensor, dict[str, Any]]]) -> None:
        params, state = saved
        for tensor, value in zip(self._tensors(), params, strict=True):
            tensor.copy_(value)
        for p, st in self.optimizer.state.items():
            for key, value in st.items():
                if isinstance(value, torch.Tensor):   # a state created by the warm-up starts at 0
                    value.copy_(state[p][key]) if p in state else value.zero_()

    # --- persistence -----------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Networks, targets, temperature, optimiser, generator and the update count."""
        return {"actor": self.actor.state_dict(), "critic": self.critic.state_dict(),
                "critic_target": self.critic_target.state_dict(),
                "log_alpha": self.log_alpha.detach().clone(),
                "optimizer": self.optimizer.state_dict(), "generator": self.generator.get_state(),
                "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output (same sizes and settings)."""
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        self.critic_target.load_state_dict(state["critic_target"])
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        # A copy: torch's Optimizer.load_state_dict may keep the given tensors (Adam's step and
        # moments) as they are, and two live agents must never share them.
        self.optimizer.load_state_dict(copy.deepcopy(state["optimizer"]))
        self.generator.set_state(state["generator"])
        self.updates = int(state["updates"])
        self._graphs.clear()   # the optimiser's state tensors are new: captured graphs are stale
