"""Reference liquidation keeper (SPEC.md section 7).

- `decisions`: pure rules (targets, profit, batch sizes), unit-tested.
- `index`: account discovery from events with a SQLite checkpoint.
- `settings`: `MM_*` environment settings.
- `core`: `Keeper.on_block`, the per-block handler (I/O around the rules).
- `bot`: the Silverback bot that calls it on every block.
"""
