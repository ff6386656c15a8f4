"""Code both the web service and the workers use: settings, the report model, storage, density."""
