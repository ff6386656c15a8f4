"""AWS clients, the DynamoDB repositories and provisioning of tables and queues."""
