"""Two ignite handlers that bundle configs need for the checkpoints the Model Zoo expects.

- :class:`TrainerState`: the trainer's progress as a checkpointable object. A config cannot name the trainer
  in the ``save_dict`` of a handler that the trainer itself takes (``@train#trainer`` inside
  ``train#handlers`` is a reference cycle), so this stand-in is attached to the trainer and saved and
  restored in its place; ``--resume`` then continues at the saved epoch.
- :class:`FinalValidation`: one validation at the end of training when the last epoch was not a validation
  epoch (``--epochs 1 --val_interval 10``), so the key-metric checkpoint (``model.pt``) exists after every
  run that has validation data. MONAI's ``ValidationHandler`` runs on epoch intervals only.
"""

from __future__ import annotations

from typing import Any

__all__ = ["TrainerState", "FinalValidation"]


class TrainerState:
    """The ``state_dict`` of the engine it is attached to (ignite's: iteration, epoch length, max epochs).

    Examples:
        >>> from ignite.engine import Engine
        >>> trainer, state = Engine(lambda e, b: None), TrainerState()
        >>> state.attach(trainer)
        >>> _ = trainer.run([0, 1], max_epochs=3)
        >>> state.state_dict()["iteration"]
        6
    """

    def __init__(self) -> None:
        self.engine: Any = None

    def attach(self, engine: Any) -> None:
        """Remember ``engine`` (called by the engine when it takes its handlers)."""
        self.engine = engine

    def _attached(self) -> Any:
        if self.engine is None:
            raise RuntimeError("TrainerState is not attached to a trainer: list it in the trainer's handlers")
        return self.engine

    def state_dict(self) -> dict[str, Any]:
        """The trainer's progress, for a checkpoint."""
        return dict(self._attached().state_dict())

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the trainer's progress (MONAI's ``CheckpointLoader`` keeps the run's own ``max_epochs``)."""
        self._attached().load_state_dict(state)


class FinalValidation:
    """Run ``validator`` when training completes, unless the last epoch already ran it.

    Args:
        validator: the evaluator (MONAI ``SupervisedEvaluator``) the ``ValidationHandler`` runs.
        interval: the ``ValidationHandler``'s epoch interval.
    """

    def __init__(self, validator: Any, interval: int) -> None:
        if int(interval) < 1:
            raise ValueError(f"interval must be >= 1, got {interval}")
        self.validator = validator
        self.interval = int(interval)

    def attach(self, engine: Any) -> None:
        """Run at the engine's ``COMPLETED`` event."""
        from ignite.engine import Events

        engine.add_event_handler(Events.COMPLETED, self)

    def __call__(self, engine: Any) -> None:
        if engine.state.epoch % self.interval != 0:
            self.validator.run(engine.state.epoch)
