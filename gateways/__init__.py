"""Adapters to systems outside Zhida: the treasury (国库集中支付) and its request signing."""
