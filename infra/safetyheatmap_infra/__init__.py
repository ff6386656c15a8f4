"""AWS CDK app of SafetyHeatmap: a base stack (registries, CI roles) and the service stack."""
