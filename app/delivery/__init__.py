"""Downstream delivery: destinations receive what changed, pushed, as signed webhooks
(Standard Webhooks), derived from the feeds in Postgres (`app.feed`).

- `policy`: the destination's state machine (open → suspect → parked → open), pure.
- `signing`: Standard Webhooks secrets and signatures.
- `addresses`: where a destination may point (https, no private or metadata addresses in
  production), checked when it is set and again at every delivery.
- `sender`: one HTTP attempt, pinned to the checked address, answers read up to a bound.
- `service`: the delivery rounds the workers run, and their upkeep.
- `destinations`: the operator's actions (admin API and CLI).
"""
