"""The shape every gathering handler shares: reset when a run starts, collect per iteration, act at the end."""

from __future__ import annotations

from typing import Any

__all__ = ["RunCollector"]


class RunCollector:
    """Engine handler base: :meth:`_reset` at ``STARTED``, :meth:`_collect` at every ``ITERATION_COMPLETED``,
    :meth:`_finish` at ``COMPLETED``.

    Resetting at the start makes one handler reusable across runs (an evaluator run once per epoch).
    Subclasses implement the three hooks, each taking the engine.

    Examples:
        >>> class CountIterations(RunCollector):
        ...     def _reset(self, engine): self.n = 0
        ...     def _collect(self, engine): self.n += 1
        ...     def _finish(self, engine): print(f"{self.n} iterations")
        >>> from ignite.engine import Engine
        >>> engine = Engine(lambda engine, batch: batch)
        >>> CountIterations().attach(engine)
        >>> _ = engine.run([0, 1, 2], max_epochs=1)
        3 iterations
    """

    def attach(self, engine: Any) -> None:
        """Register the three hooks on ``engine`` (an ignite ``Engine``)."""
        # ignite is needed only once a handler is attached, as NoduleCandidatesHandler always had it
        from ignite.engine import Events

        engine.add_event_handler(Events.STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._collect)
        engine.add_event_handler(Events.COMPLETED, self._finish)

    def _reset(self, engine: Any) -> None:
        raise NotImplementedError

    def _collect(self, engine: Any) -> None:
        raise NotImplementedError

    def _finish(self, engine: Any) -> None:
        raise NotImplementedError
