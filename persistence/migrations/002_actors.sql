-- Persisted submission actors (DESIGN.md §2). One row per actor: the XState persisted snapshot,
-- the inbox cursor and the ownership lease with its fencing epoch.
CREATE TABLE actor_snapshots (
  submission_id uuid PRIMARY KEY REFERENCES model_submissions (id),
  machine_version text NOT NULL,
  snapshot jsonb NOT NULL,
  state text NOT NULL,
  terminal bool NOT NULL DEFAULT false,
  last_applied_seq bigint NOT NULL DEFAULT 0,
  transition_seq bigint NOT NULL DEFAULT 0,
  owner_id text,
  owner_epoch bigint NOT NULL DEFAULT 0,
  lease_expires_at timestamptz,
  updated_at timestamptz NOT NULL DEFAULT now()
);
-- Restore and lease renewal touch only live actors.
CREATE INDEX actor_snapshots_live ON actor_snapshots (owner_id) WHERE NOT terminal;

-- Write-ahead inbox: every external event is inserted here before the actor sees it; restore
-- replays seq > last_applied_seq.
CREATE TABLE actor_inbox (
  submission_id uuid NOT NULL REFERENCES model_submissions (id),
  seq bigserial,
  event jsonb NOT NULL,
  -- A producer that may repeat itself (dispatcher retry, re-sent worker report) names its event;
  -- the second insert is a no-op.
  dedup_key text UNIQUE,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (submission_id, seq)
);

-- Append-only transition log: feeds SDK subscriptions (cursor = id), the dashboard and the
-- Stately inspection feed.
CREATE TABLE actor_transitions (
  id bigserial PRIMARY KEY,
  submission_id uuid NOT NULL REFERENCES model_submissions (id),
  transition_seq bigint NOT NULL,
  from_state text,
  to_state text NOT NULL,
  event_type text NOT NULL,
  event jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (submission_id, transition_seq)
);

-- Backend process registry: a restarted process bumps its incarnation.
CREATE TABLE backend_nodes (
  node_id text PRIMARY KEY,
  incarnation uuid NOT NULL,
  started_at timestamptz NOT NULL DEFAULT now(),
  heartbeat_at timestamptz NOT NULL DEFAULT now()
);

-- Operator audit trail (mutations over the RPC).
CREATE TABLE operator_actions (
  id bigserial PRIMARY KEY,
  actor text NOT NULL,
  action text NOT NULL,
  target text,
  data jsonb,
  created_at timestamptz NOT NULL DEFAULT now()
);
