"""Margin Maintenance: Python side (deployment, keeper, simulator) of the Vyper margin engine."""
