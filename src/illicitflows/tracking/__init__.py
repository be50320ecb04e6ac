"""MLflow: where runs are tracked, what each run logs, the registry and its aliases."""
