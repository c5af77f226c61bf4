"""Subscriptions: each installed company's Procore hook, kept in step with the configuration.

- `plan` (pure): the hooks and triggers Procore shows → the changes that make them right.
- `hooks`: the v1.0 Webhooks API over the shared Procore client (paced, audited).
- `service`: one company's sync (list, plan, apply, record) and the periodic tick.

The requests for a sync (rows that a gate opening, the tick or an operator write) are
`app.schedule.hooks`.
"""
