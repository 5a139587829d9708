"""Staffing: labour standards as data, the rules that draw demand, plans with p50 / p80 / p95 bands, and labour
standards estimated from records. Imports job/ and the stages below it."""
