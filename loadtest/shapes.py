"""Shapes of load for the tritonkit locustfile; it exposes the one that its config selects.

Each reads Locust's common options (`-u` users, `-r` spawn rate, `-t` run time) and stops the
test at the run time itself: with a shape class, Locust's own run-time limit never starts.
"""

from __future__ import annotations

from locust import LoadTestShape


class _Timed(LoadTestShape):
    abstract = True
    use_common_options = True

    def _options(self) -> tuple[int, float, int]:
        """(users, spawn rate, run time in seconds) from the command line."""
        options = self.runner.environment.parsed_options  # runner: set before the first tick
        users = int(options.num_users or 1)
        return users, float(options.spawn_rate or users), int(options.run_time or 0)


class FixedUsers(_Timed):
    """`-u` users, started at `-r` per second, until `-t`."""

    def tick(self) -> tuple[int, float] | None:
        users, spawn_rate, run_time = self._options()
        return None if self.get_run_time() >= run_time else (users, spawn_rate)


class StepRamp(_Timed):
    """`step_users` more users every `step_time_s` seconds, up to `-u`, until `-t`."""

    step_users = 1
    step_time_s = 10.0

    def tick(self) -> tuple[int, float] | None:
        users, spawn_rate, run_time = self._options()
        elapsed = self.get_run_time()
        if elapsed >= run_time:
            return None
        step = int(elapsed // self.step_time_s) + 1
        return min(users, step * self.step_users), spawn_rate


def step_ramp(step_users: int, step_time_s: float) -> type[StepRamp]:
    """A StepRamp with these steps (Locust instantiates the class itself)."""
    return type("StepRamp", (StepRamp,), {"step_users": step_users, "step_time_s": step_time_s})
