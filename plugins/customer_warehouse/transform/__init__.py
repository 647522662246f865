"""Transformation: the dbt project runner and the BG/NBD churn model fitted between dbt steps."""
