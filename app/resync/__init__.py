"""Resync: backfill the mirror from Procore's list endpoints, for what webhooks never said.

- `plan` (pure): the parts of a run (resource by project), their list paths, pagination,
  and which listed resources differ from the mirror.
- `runs`: the `resync_runs` rows: request, lease, cursor, progress.
- `service`: run one resync (page by page, resumable) and hand due runs to the workers.
"""
