"""Platform: settings, storage and tenancy, staff and roles, the ledger."""
