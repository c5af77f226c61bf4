"""Requests for background work, written as rows in the caller's transaction.

- `hooks`: a company's hooks sync asked for (`request_sync`), and what a gate opening asks
  for (`gate_opened`: the company's hooks sync and a backfill, or a project's backfill).
- `runs`: the `resync_runs` rows: request, lease, cursor, progress.

Nothing here calls Procore or imports a flow: the gates (an opening), the subscriptions'
tick, the resync and the operator surfaces all write their requests here, and the ticks hand
the rows to workers after commit. A leaf below every flow, so none of them imports another
to ask for work.
"""
