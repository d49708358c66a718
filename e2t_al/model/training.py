"""One training loop with validation and early stopping, shared by the E2T model and the plain-regression baseline."""

from __future__ import annotations

import copy
import threading
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Callable

import torch
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from e2t_al.config import TrainingConfig


# Members trained in parallel threads (a campaign's `task_runner: threads`) share torch's global generator: without
# the lock, one member's seed could land between another's seeding and its weight draw, and a seeded campaign would
# start from different weights from run to run.
GLOBAL_GENERATOR_LOCK = threading.Lock()


@contextmanager
def seeded(seed: int):
    """torch's global generator seeded with ``seed`` for the block, and no other thread seeds or draws through
    ``seeded`` meanwhile. Draws after the block (dropout during training) share the generator with other threads,
    so only what the block draws is reproducible when several threads train."""
    with GLOBAL_GENERATOR_LOCK:
        torch.manual_seed(seed)
        yield


@dataclass
class TrainingHistory:
    steps: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    validation_loss: list[float] = field(default_factory=list)
    best_step: int = 0
    stopped_early: bool = False


def train_with_early_stopping(
    module: torch.nn.Module,
    training_loss: Callable[[], torch.Tensor],
    validation_loss: Callable[[], float] | None,
    config: TrainingConfig,
    description: str = "training",
    progress: bool = True,
) -> TrainingHistory:
    """AdamW on ``training_loss()`` for up to ``max_steps``; every ``validate_every`` steps evaluates
    ``validation_loss()`` (in eval mode, no gradients) and stops after ``patience`` evaluations without
    improvement, restoring the best weights. Without a validation loss it runs all steps."""
    optimiser = torch.optim.AdamW(module.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    history = TrainingHistory()
    best, best_state, bad_rounds, running = float("inf"), None, 0, []
    bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} {task.fields[status]}"),
                   TimeElapsedColumn(), transient=True) if progress else None
    with bar or nullcontext():
        task = bar.add_task(description, total=config.max_steps, status="") if bar else None
        for step in range(1, config.max_steps + 1):
            module.train()
            optimiser.zero_grad()
            loss = training_loss()
            loss.backward()
            optimiser.step()
            running.append(loss.item())
            if validation_loss is not None and (step % config.validate_every == 0 or step == config.max_steps):
                module.eval()
                with torch.no_grad():
                    current = validation_loss()
                history.steps.append(step)
                history.train_loss.append(sum(running) / len(running))
                history.validation_loss.append(current)
                running = []
                if current < best:
                    best, best_state, bad_rounds, history.best_step = current, copy.deepcopy(module.state_dict()), 0, step
                else:
                    bad_rounds += 1
                if bar:
                    bar.update(task, status=f"val {current:.3f} (best {best:.3f} @ {history.best_step})")
                if bad_rounds >= config.patience:
                    history.stopped_early = True
                    if bar:
                        bar.update(task, completed=step)
                    break
            if bar:
                bar.advance(task)
    if best_state is not None:
        module.load_state_dict(best_state)
    else:
        history.best_step = config.max_steps
    module.eval()
    return history
