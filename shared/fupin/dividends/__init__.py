"""Dividends (分红): pooled 特惠贷 investments and cooperative shares, paid by keyed worker runs."""
