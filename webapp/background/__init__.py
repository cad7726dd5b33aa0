"""Work no request waits for: the reconciler's passes (leases, republishing, webhooks) and pruning old results."""
