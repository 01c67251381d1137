"""KL weight (beta) schedules, each a pure function of the global step.

Computing from the step, never from a counter, means a resumed run continues the schedule.
Each class is the `beta=` config group's target: `beta(step)` is the KL weight in force, `fixed()`
the weight when it never changes (else None), and `spelled` the override that chose it. Every
objective with a KL term weighs it by the schedule; one without refuses any but the constant 1.
(The capacity objective of Burgess et al. 2018 is `objective=capacity`, not a schedule.)
"""

from vae.errors import ConfigError, check_int, check_number


def linear_warmup(step: int, warmup_steps: int, start: float, end: float) -> float:
    """Beta rises linearly from `start` to `end` over `warmup_steps`, then stays (Bowman et al. 2016)."""
    if step >= warmup_steps:
        return end
    return start + (end - start) * step / warmup_steps


def cyclical(step: int, cycle_steps: int, ratio: float, start: float, end: float) -> float:
    """Beta repeats a ramp: up from `start` over the first `ratio` of each cycle, then `end` (Fu et al. 2019)."""
    tau = (step % cycle_steps) / cycle_steps
    if tau >= ratio:
        return end
    return start + (end - start) * tau / ratio


class Schedule:
    """A KL weight over the global step."""

    spelled = "beta="

    def beta(self, step: int) -> float:
        raise NotImplementedError

    def fixed(self) -> float | None:
        """The weight, if it is the same at every step; None if it moves."""
        return None


class Constant(Schedule):
    """beta * KL with a fixed beta; beta = 1 is the plain ELBO."""

    def __init__(self, value: float = 1.0):
        self.value = check_number("beta.value", value, 0.0)
        self.spelled = f"beta=constant beta.value={self.value:g}"

    def beta(self, step: int) -> float:
        return self.value

    def fixed(self) -> float | None:
        return self.value


class Linear(Schedule):
    """KL annealing: beta warms up linearly, which helps against posterior collapse."""

    spelled = "beta=linear"

    def __init__(self, warmup_steps: int = 1000, start: float = 0.0, end: float = 1.0):
        self.warmup_steps = check_int("beta.warmup_steps", warmup_steps, 0)
        self.start = check_number("beta.start", start, 0.0)
        self.end = check_number("beta.end", end, 0.0)

    def beta(self, step: int) -> float:
        return linear_warmup(step, self.warmup_steps, self.start, self.end)


class Cyclical(Schedule):
    """Cyclical annealing: the warm-up repeats every `cycle_steps`."""

    spelled = "beta=cyclical"

    def __init__(self, cycle_steps: int = 1000, ratio: float = 0.5, start: float = 0.0, end: float = 1.0):
        self.cycle_steps = check_int("beta.cycle_steps", cycle_steps, 1)
        self.ratio = check_number("beta.ratio", ratio, 0.0)
        if self.ratio > 1.0:
            raise ConfigError(f"beta.ratio={ratio} is invalid: it must be a number in [0, 1]")
        self.start = check_number("beta.start", start, 0.0)
        self.end = check_number("beta.end", end, 0.0)

    def beta(self, step: int) -> float:
        return cyclical(step, self.cycle_steps, self.ratio, self.start, self.end)


def burda2016_stages(budget: float = 1.0) -> list[int]:
    """Epochs of each learning-rate stage of Burda et al. 2016 (Sec. 5): 3^i epochs at 1e-3 * 10^(-i/7),
    i = 0..7, 3,280 epochs in all; `budget` scales every stage (each keeps at least one epoch).

    budget 0.5 gives 1, 2, 4, 14, 40, 122, 364 and 1,094 epochs.
    """
    if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not 0 < budget <= 1000:
        raise ConfigError(f"budget={budget} is invalid: it must be a fraction of the schedule in (0, 1000], e.g. 0.1")
    return [max(1, round(3**i * budget)) for i in range(8)]
