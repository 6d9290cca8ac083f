"""Optimizers and learning-rate schedulers with torch.optim's names, hyper-parameters and update rules.

A step builds every parameter's update lazily and realizes them together, so the whole step runs
as a handful of fused kernels rather than one per operation. Hyper-parameters that may change
between steps (the learning rate under a scheduler, a cycled momentum) enter the kernels as 0-d device
tensors refreshed in place, and step counts live on the device: a constant is part of the kernel (a new
value every step meant a new compile every step), and a captured step (tg.core.TinyJit) must see both.
State tensors keep their identity across steps (they take each step's new value), so a capture knows
which data each step replaces.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Optional, Union

import numpy as np

from tg.core import Tensor, jit, no_grad
from tg.core.multi import shards_of

Params = Union[Iterable[Tensor], Iterable[dict[str, Any]]]


class Optimizer:
    """Base class: parameter groups, per-parameter state, zero_grad and state_dict like torch's."""

    def __init__(self, params: Params, defaults: dict[str, Any]):
        self.defaults = defaults
        groups: list[Any] = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        self.param_groups: list[dict[str, Any]] = []
        for g in groups:
            group = {**defaults, **g, "params": list(g["params"])}
            for p in group["params"]:
                if not p.requires_grad:
                    raise ValueError(f"{type(self).__name__}: can't optimize a tensor that does not require grad")
            self.param_groups.append(group)
        self.state: dict[int, dict[str, Any]] = {}
        self._hyper: dict[tuple[int, str, str, str], list[Any]] = {}  # key -> [tensor, value, group, compute]

    def hyper(self, group: dict[str, Any], name: str, compute: Any, like: Tensor) -> Tensor:
        """The hyper-parameter `compute(group)` as a 0-d tensor beside `like`, one per group and name,
        rewritten in place when the value changes."""
        key = (id(group), name, like.device, like.dtype.name)
        entry = self._hyper.get(key)
        value = float(compute(group))
        if entry is None:
            t = Tensor(np.asarray(value, like.dtype.np), device=like.device).realize()
            self._hyper[key] = entry = [t, value, group, compute]
        elif entry[1] != value:
            self._refresh(entry, value)
        return entry[0]

    @staticmethod
    def _refresh(entry: list[Any], value: float) -> None:
        t = entry[0]
        for node in shards_of(t.node):  # each device's copy, for parameters spread over several (Tensor.shard)
            node.base.buffer.copyin(np.asarray(value, t.dtype.np))
        entry[1] = value

    def _sync_hyper(self) -> None:
        """Upload hyper-parameters that changed since the last step (run before each TinyJit replay)."""
        for entry in self._hyper.values():
            value = float(entry[3](entry[2]))
            if value != entry[1]:
                self._refresh(entry, value)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for g in self.param_groups:
            for p in g["params"]:
                p.grad = None

    def step(self) -> None:
        """Apply one update to every parameter that has a gradient."""
        updates: list[tuple[Tensor, Tensor]] = []
        jit.on_replay(self._sync_hyper)
        with no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    state = self.state.setdefault(id(p), {})
                    before = dict(state)
                    updates.append((p, self.update(p, p.grad.detach(), state, group)))
                    for k, v in state.items():  # a state tensor takes its new value: it keeps its identity
                        if not isinstance(v, Tensor):
                            continue
                        old = before.get(k)
                        v = v.contiguous()  # its own dense buffer (a gradient may be a transposed view)
                        if isinstance(old, Tensor) and v is not old:
                            old.node = v.node
                            v = old
                        state[k] = v
            states = [v for s in self.state.values() for v in s.values() if isinstance(v, Tensor)]
            if updates:  # one realize: every parameter's update and state in as few kernels as fusion allows
                Tensor.realize(*(new for _, new in updates), *states)
        for p, new in updates:
            p.node = new.node

    def update(self, p: Tensor, grad: Tensor, state: dict[str, Any], group: dict[str, Any]) -> Tensor:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """{'state': {index: {name: array or number}}, 'param_groups': [...]} with parameters as indices."""
        index = {id(p): i for i, p in enumerate(p for g in self.param_groups for p in g["params"])}
        state = {index[k]: {n: (v.numpy() if isinstance(v, Tensor) else v) for n, v in s.items()}
                 for k, s in self.state.items() if k in index}
        groups = []
        for g in self.param_groups:
            settings = {k: v for k, v in g.items() if k != "params"}
            groups.append({**settings, "params": [index[id(p)] for p in g["params"]]})
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        params = [p for g in self.param_groups for p in g["params"]]
        for g, saved in zip(self.param_groups, state_dict["param_groups"]):
            g.update({k: v for k, v in saved.items() if k != "params"})
        self.state = {}
        for i, s in state_dict["state"].items():
            p = params[int(i)]
            self.state[id(p)] = {n: (Tensor(np.asarray(v), device=p.device) if isinstance(v, np.ndarray) else v)
                                 for n, v in s.items()}


class SGD(Optimizer):
    def __init__(self, params: Params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, maximize: bool = False):
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, {"lr": lr, "momentum": momentum, "dampening": dampening,
                                  "weight_decay": weight_decay, "nesterov": nesterov, "maximize": maximize})

    def update(self, p: Tensor, grad: Tensor, state: dict[str, Any], group: dict[str, Any]) -> Tensor:
        g = -grad if group["maximize"] else grad
        if group["weight_decay"]:
            g = g + group["weight_decay"] * p
        if group["momentum"]:
            buf = state.get("momentum_buffer")
            momentum = self.hyper(group, "momentum", lambda g: g["momentum"], p)
            buf = g if buf is None else buf * momentum + g * (1 - group["dampening"])
            state["momentum_buffer"] = buf
            g = g + momentum * buf if group["nesterov"] else buf
        return p - self.hyper(group, "lr", lambda g: g["lr"], p) * g


class Adam(Optimizer):
    """Adam; `decoupled` weight decay makes it AdamW."""

    decoupled = False

    def __init__(self, params: Params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False, maximize: bool = False):
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                                  "amsgrad": amsgrad, "maximize": maximize})

    def update(self, p: Tensor, grad: Tensor, state: dict[str, Any], group: dict[str, Any]) -> Tensor:
        b2 = group["betas"][1]
        g = -grad if group["maximize"] else grad
        if group["weight_decay"] and self.decoupled:
            p = p * self.hyper(group, "decay", lambda g: 1 - g["lr"] * g["weight_decay"], p)
        elif group["weight_decay"]:
            g = g + group["weight_decay"] * p
        step = _count(state, p)
        m = state.get("exp_avg")
        v = state.get("exp_avg_sq")
        s1 = self.hyper(group, "beta1", lambda g: g["betas"][0], p)  # beta1 moves under OneCycleLR
        r1 = self.hyper(group, "1-beta1", lambda g: 1 - g["betas"][0], p)
        m = g * r1 if m is None else m * s1 + g * r1
        v = g * g * (1 - b2) if v is None else v * b2 + g * g * (1 - b2)
        state.update(exp_avg=m, exp_avg_sq=v)
        if group["amsgrad"]:
            vmax = state.get("max_exp_avg_sq")
            vmax = v if vmax is None else vmax.maximum(v)
            state["max_exp_avg_sq"] = vmax
            v = vmax
        beta1 = self.hyper(group, "beta1 (float64)", lambda g: g["betas"][0], step)
        correction1 = (1 - _power(beta1, step)).cast(p.dtype)
        correction2 = (1 - _power(b2, step)).cast(p.dtype)
        denom = v.sqrt() / correction2.sqrt() + group["eps"]
        return p - self.hyper(group, "lr", lambda g: g["lr"], p) / correction1 * m / denom


class AdamW(Adam):
    """Adam with decoupled weight decay (default 0.01, as torch)."""

    decoupled = True

    def __init__(self, params: Params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False, maximize: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize)


class RMSprop(Optimizer):
    def __init__(self, params: Params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False):
        super().__init__(params, {"lr": lr, "alpha": alpha, "eps": eps, "weight_decay": weight_decay,
                                  "momentum": momentum, "centered": centered})

    def update(self, p: Tensor, grad: Tensor, state: dict[str, Any], group: dict[str, Any]) -> Tensor:
        g = grad + group["weight_decay"] * p if group["weight_decay"] else grad
        a = group["alpha"]
        sq = state.get("square_avg")
        sq = g * g * (1 - a) if sq is None else sq * a + g * g * (1 - a)
        state["square_avg"] = sq
        if group["centered"]:
            ga = state.get("grad_avg")
            ga = g * (1 - a) if ga is None else ga * a + g * (1 - a)
            state["grad_avg"] = ga
            avg = (sq - ga * ga).sqrt() + group["eps"]
        else:
            avg = sq.sqrt() + group["eps"]
        if group["momentum"]:
            buf = state.get("momentum_buffer")
            buf = g / avg if buf is None else buf * self.hyper(group, "momentum", lambda g: g["momentum"], p) + g / avg
            state["momentum_buffer"] = buf
            return p - self.hyper(group, "lr", lambda g: g["lr"], p) * buf
        return p - self.hyper(group, "lr", lambda g: g["lr"], p) * g / avg


class Adagrad(Optimizer):
    def __init__(self, params: Params, lr: float = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10):
        super().__init__(params, {"lr": lr, "lr_decay": lr_decay, "weight_decay": weight_decay,
                                  "initial_accumulator_value": initial_accumulator_value, "eps": eps})

    def update(self, p: Tensor, grad: Tensor, state: dict[str, Any], group: dict[str, Any]) -> Tensor:
        step = _count(state, p)
        g = grad + group["weight_decay"] * p if group["weight_decay"] else grad
        clr = self.hyper(group, "lr", lambda g: g["lr"], p) / ((step - 1) * group["lr_decay"] + 1).cast(p.dtype)
        acc = state.get("sum")
        acc = (g * g + group["initial_accumulator_value"]) if acc is None else acc + g * g
        state.update(sum=acc)
        return p - clr * g / (acc.sqrt() + group["eps"])


def _count(state: dict[str, Any], p: Tensor) -> Tensor:
    """This parameter's step number, counted on its device (torch keeps `step` as a tensor too), in float64
    so that bias corrections like 1 - beta**step keep their digits."""
    old = state.get("step")
    step = Tensor(np.asarray(1.0, np.float64), device=p.device) if old is None else old + 1
    state["step"] = step
    return step



def _power(base: Union[float, Tensor], step: Tensor) -> Tensor:
    """base ** step for a base in (0, 1] and a positive count: two ops, where general pow handles signs."""
    log_base = base.log2() if isinstance(base, Tensor) else math.log2(base) if base > 0 else -math.inf
    return (step * log_base).exp2()


def clip_grad_norm_(parameters: Iterable[Tensor], max_norm: float, norm_type: float = 2.0) -> Tensor:
    """Scale gradients in place so that their joint norm is at most max_norm; returns the norm before."""
    grads = [p for p in parameters if p.grad is not None]
    if not grads:
        return Tensor(0.0)
    with no_grad():
        if norm_type == math.inf:
            total = grads[0].grad.abs().max()  # type: ignore[union-attr]
            for p in grads[1:]:
                total = total.maximum(p.grad.abs().max())  # type: ignore[union-attr]
        else:
            acc: Optional[Tensor] = None
            for p in grads:
                part = (p.grad.abs() ** norm_type).sum()  # type: ignore[union-attr]
                acc = part if acc is None else acc + part
            assert acc is not None
            total = acc ** (1 / norm_type)
        coef = (max_norm / (total + 1e-6)).minimum(1.0)
        for p in grads:
            p.grad = (p.grad * coef).realize()
    return total


class LRScheduler:
    """Base scheduler: step() advances an epoch and sets each group's lr from get_lr()."""

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        self.optimizer = optimizer
        for g in optimizer.param_groups:
            g.setdefault("initial_lr", g["lr"])
        self.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def get_lr(self) -> list[float]:
        raise NotImplementedError

    def step(self) -> None:
        self.last_epoch += 1
        for g, lr in zip(self.optimizer.param_groups, self.get_lr()):
            g["lr"] = lr

    def get_last_lr(self) -> list[float]:
        return [g["lr"] for g in self.optimizer.param_groups]


class StepLR(LRScheduler):
    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [base * self.gamma ** (self.last_epoch // self.step_size) for base in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1):  # noqa: N803
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [self.eta_min + (base - self.eta_min) * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
                for base in self.base_lrs]


class LinearLR(LRScheduler):
    """Linear warm-up (or decay) of the lr factor from start_factor to end_factor over total_iters steps."""

    def __init__(self, optimizer: Optimizer, start_factor: float = 1 / 3, end_factor: float = 1.0,
                 total_iters: int = 5, last_epoch: int = -1):
        self.start_factor, self.end_factor, self.total_iters = start_factor, end_factor, total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        t = min(self.last_epoch, self.total_iters)
        factor = self.start_factor + (self.end_factor - self.start_factor) * t / self.total_iters
        return [base * factor for base in self.base_lrs]


class OneCycleLR(LRScheduler):
    """1cycle (torch.optim.lr_scheduler.OneCycleLR): the learning rate warms up from max_lr/div_factor to
    max_lr, then anneals to max_lr/(div_factor*final_div_factor), by cosine or linearly; with
    `cycle_momentum` the momentum (SGD's momentum, Adam's beta1) moves the opposite way between
    max_momentum and base_momentum. `three_phase` comes back down to the initial rate before annealing."""

    def __init__(self, optimizer: Optimizer, max_lr: float, total_steps: Optional[int] = None,
                 epochs: Optional[int] = None, steps_per_epoch: Optional[int] = None, pct_start: float = 0.3,
                 anneal_strategy: str = "cos", cycle_momentum: bool = True, base_momentum: float = 0.85,
                 max_momentum: float = 0.95, div_factor: float = 25.0, final_div_factor: float = 1e4,
                 three_phase: bool = False, last_epoch: int = -1):
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise ValueError("OneCycleLR: give total_steps, or epochs and steps_per_epoch")
            total_steps = epochs * steps_per_epoch
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"OneCycleLR: anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        self.total_steps, self.anneal_strategy, self.cycle_momentum = total_steps, anneal_strategy, cycle_momentum
        initial, top = max_lr / div_factor, max_lr
        final = initial / final_div_factor
        warm = float(pct_start * total_steps) - 1
        # (last step of the phase, lr from, lr to, momentum from, momentum to)
        if three_phase:
            self.phases = [(warm, initial, top, max_momentum, base_momentum),
                           (2 * warm, top, initial, base_momentum, max_momentum),
                           (total_steps - 1, initial, final, max_momentum, max_momentum)]
        else:
            self.phases = [(warm, initial, top, max_momentum, base_momentum),
                           (total_steps - 1, top, final, base_momentum, max_momentum)]
        if cycle_momentum:
            if not all("momentum" in g or "betas" in g for g in optimizer.param_groups):
                raise ValueError("OneCycleLR: cycle_momentum needs an optimizer with momentum or betas")
            for g in optimizer.param_groups:
                self._set_momentum(g, max_momentum)
        for g in optimizer.param_groups:
            g["initial_lr"] = initial
        super().__init__(optimizer, last_epoch)

    @staticmethod
    def _set_momentum(group: dict[str, Any], value: float) -> None:
        if "betas" in group:
            group["betas"] = (value, *group["betas"][1:])
        else:
            group["momentum"] = value

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def _position(self) -> tuple[float, float]:
        t = self.last_epoch
        if t > self.total_steps:
            raise ValueError(f"OneCycleLR: stepped {t} times, more than total_steps={self.total_steps}")
        start = 0.0
        for i, (end, lr0, lr1, m0, m1) in enumerate(self.phases):
            if t <= end or i == len(self.phases) - 1:
                pct = (t - start) / (end - start)
                return self._anneal(lr0, lr1, pct), self._anneal(m0, m1, pct)
            start = end
        raise AssertionError("unreachable")

    def get_lr(self) -> list[float]:
        return [self._position()[0] for _ in self.base_lrs]

    def step(self) -> None:
        super().step()
        if self.cycle_momentum:
            momentum = self._position()[1]
            for g in self.optimizer.param_groups:
                self._set_momentum(g, momentum)


class LAMB(Optimizer):
    """LAMB (You et al., 2019): Adam's direction with weight decay, scaled per parameter tensor by the
    trust ratio ||p|| / ||update|| (1 where either norm is zero). torch.optim has no LAMB; this follows the paper."""

    def __init__(self, params: Params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-6, weight_decay: float = 0.0):
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay})

    def update(self, p: Tensor, grad: Tensor, state: dict[str, Any], group: dict[str, Any]) -> Tensor:
        b1, b2 = group["betas"]
        step = _count(state, p)
        m, v = state.get("exp_avg"), state.get("exp_avg_sq")
        m = grad * (1 - b1) if m is None else m * b1 + grad * (1 - b1)
        v = grad * grad * (1 - b2) if v is None else v * b2 + grad * grad * (1 - b2)
        state.update(exp_avg=m, exp_avg_sq=v)
        c1 = (1 - _power(b1, step)).cast(p.dtype)
        c2 = (1 - _power(b2, step)).cast(p.dtype)
        r = (m / c1) / ((v / c2).sqrt() + group["eps"])
        if group["weight_decay"]:
            r = r + group["weight_decay"] * p
        w_norm, r_norm = (p * p).sum().sqrt(), (r * r).sum().sqrt()
        trust = ((w_norm > 0).logical_and(r_norm > 0)).if_else(w_norm / r_norm, 1.0)
        return p - self.hyper(group, "lr", lambda g: g["lr"], p) * trust * r
