"""Subscriptions: each installed company's Procore hook, kept in step with the configuration.

- `plan` (pure): the hooks and triggers Procore shows → the changes that make them right.
- `hooks`: the v1.0 Webhooks API over the shared Procore client (paced, audited).
- `schedule`: the requests (rows) that a gate opening, the periodic tick or an operator write.
- `service`: one company's sync (list, plan, apply, record) and the periodic tick.
"""
