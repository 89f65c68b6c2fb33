"""Plain code the tests share (no fixtures: those stay in tests/conftest.py).

    constants.py      the engine's constants (re-exported from margin_maintenance.model, which
                      parses them from the Vyper sources), the configurator's bounds, and the
                      test system's token, feeds, market ids and pinned defaults
    deployers.py      deploy and fund helpers: tokens, feeds, systems, the shared world;
                      the engine's ledger total
    strategies.py     Hypothesis strategies: the model-parity inputs and the state machine's
    state_machine.py  the invariant state machine (MarginMachine) and the world it drives;
                      tests/test_invariants.py runs it
    trading.py        trade and price helpers (buy, sell, move, units) and the engine's maths
                      (notional, PnL) at the deployed token scale

Importable as `support` because tests/ is on sys.path (pytest's rootdir conftest,
tests/conftest.py, which also registers this package for assertion rewriting). Nothing is
imported here, so `support.constants` stays free of Ape and Hypothesis.
"""
