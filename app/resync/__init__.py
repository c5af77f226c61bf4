"""Resync: backfill the mirror from Procore's list endpoints, for what webhooks never said.

- `plan` (pure): the parts of a run (resource by project), their list paths, pagination,
  and which listed resources differ from the mirror.
- the `resync_runs` rows themselves (request, lease, cursor) are `app.schedule.runs`.
- `service`: run one resync (page by page, resumable) and hand due runs to the workers.
"""
