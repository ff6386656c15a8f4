"""AWS clients, the DynamoDB repositories and provisioning of tables and queues.

The repositories are the only code that knows item shapes: ``reports`` (the reports table) and
``grids`` (tiles, marks, leases, meta), over ``dynamo`` (batches, pages, retries); ``keys`` and
``points`` are the names and the packed reports that readers outside them share. Import from
the module that defines a name: this package re-exports nothing.
"""
