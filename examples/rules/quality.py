"""Backtest-quality rules: strategies whose metrics cannot be trusted, whatever their score.

Run by the service with ``strategy-consumer --rules examples/rules`` (README: Analyst rules).
"""

from strategy_consumer.rules import rule

MIN_TRADES = 30           # below this a backtest's statistics are noise
MAX_BELIEVABLE_WIN_RATE = 0.95


@rule(description="too few trades for the score to mean anything")
def too_few_trades(s):
    trades = s.metric("total_trades")
    if trades is not None and trades < MIN_TRADES:
        return f"{trades} trades: a score from fewer than {MIN_TRADES} trades is noise"


@rule(description="a win rate this close to perfect means look-ahead bias or a broken backtest")
def suspiciously_perfect_win_rate(s):
    win_rate = s.metric("win_rate")
    if win_rate is not None and win_rate >= MAX_BELIEVABLE_WIN_RATE:
        return (f"win rate {win_rate:.0%} over {s.metric('total_trades', '?')} trades: "
                "real strategies do not win that often; check the backtest for look-ahead bias")


@rule(severity="warn", description="the worst drawdown is large for what the strategy returns")
def drawdown_large_for_return(s):
    total_return, drawdown = s.metric("total_return"), s.metric("max_drawdown")
    if total_return is None or drawdown is None or total_return <= 0:
        return None
    if -drawdown > 3 * total_return:
        return (f"max drawdown {drawdown:.1%} against a total return of {total_return:.1%}: "
                "more than three times what it earns")
