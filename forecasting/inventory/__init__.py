"""Inventory quantities from the published forecast: lead-time demand, reorder points and safety stocks per SKU x
store (quantities.py), and the backtest of that policy over earlier windows (policy.py)."""
