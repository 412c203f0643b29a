"""Parameter combinations that make no sense for their strategy type, although each value is in its range.

The catalog checks every parameter on its own; a crossover also needs its short (fast) period to be shorter than
its long (slow) one, or the "crossover" compares a series with a slower copy of itself the wrong way round.
"""

from strategy_consumer.rules import rule

# Parameter name prefixes that must come in this order: <short>X < <long>X (e.g. shortEmaPeriod < longEmaPeriod).
ORDERED_PREFIXES = (("short", "long"), ("fast", "slow"))


def _pairs(parameter_names):
    pairs = []
    for name in parameter_names:
        for low, high in ORDERED_PREFIXES:
            if name.startswith(low) and high + name[len(low):] in parameter_names:
                pairs.append((name, high + name[len(low):]))
    return tuple(pairs)


# A batch rule: one call per batch, with the pairs of each parameter layout worked out once.
@rule(batch=True, description="a crossover whose short period is not shorter than its long period")
def crossover_periods_inverted(strategies):
    pairs_of = {}
    verdicts = []
    for s in strategies:
        names = tuple(sorted(s.parameters))
        pairs = pairs_of.get(names)
        if pairs is None:
            pairs = pairs_of[names] = _pairs(names)
        verdict = None
        for short, long in pairs:
            if s.parameters[short] >= s.parameters[long]:
                verdict = (f"{s.strategy_type}: {short}={s.parameters[short]} is not shorter than "
                           f"{long}={s.parameters[long]}")
                break
        verdicts.append(verdict)
    return verdicts
