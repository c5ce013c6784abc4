"""`revops backtest`: score history as it stood and compare with outcomes (docs/backtest.md).
It reads the data agent's warehouse and runs the decision agent's rubrics, so it is a tool of the
CLI, not part of either service."""
