"""The read side for operators: monitoring queries, Prometheus metrics and analytics."""
