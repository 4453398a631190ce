-- Pipeline tables of spec/pipeline.md §8. Names and state lists match upstream so data and
-- dashboards migrate; columns marked (new) there are product extensions.

CREATE TABLE model_submissions (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  miner_id uuid,
  chain_commit_id uuid UNIQUE NOT NULL,
  netuid int NOT NULL,
  uid int,
  hotkey text NOT NULL,
  model_uri text NOT NULL,
  commit_hash text,
  model_hash text,
  architecture text,
  parameter_count bigint,
  state text NOT NULL DEFAULT 'SUBMITTED' CHECK (state IN (
    'SUBMITTED','HIPPIUS_RUNNING','HIPPIUS_RETRYABLE','HIPPIUS_VALIDATED',
    'PRE_EVAL_QUEUED','PRE_EVAL_RUNNING','PRE_EVAL_RETRYABLE','PRE_EVAL_PASSED',
    'EVAL_QUEUED','EVAL_RUNNING','EVAL_RETRYABLE','EVAL_WIN',
    'SET_REIGN_RUNNING','SET_REIGN_RETRYABLE','REIGN_SET',
    'WEIGHT_SET_RUNNING','WEIGHT_SET_RETRYABLE',
    'COMPLETE_CORONATED','COMPLETE_LOSS','TERMINAL_INVALID','TERMINAL_INFRA_FAILED')),
  fault_class text,
  fault_code text,
  fault_message text,
  retry_count int NOT NULL DEFAULT 0,
  priority int NOT NULL DEFAULT 100,
  idempotency_key text UNIQUE NOT NULL,
  protocol_version text NOT NULL DEFAULT 'v1',
  next_attempt_at timestamptz,
  block_number bigint,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz
);
CREATE UNIQUE INDEX model_submissions_model_hash_key ON model_submissions (model_hash) WHERE model_hash IS NOT NULL;
CREATE INDEX model_submissions_state_idx ON model_submissions (state, priority, created_at);
CREATE INDEX model_submissions_hotkey_idx ON model_submissions (hotkey, state, created_at DESC);

CREATE TABLE chain_commits (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  netuid int NOT NULL,
  block_number bigint NOT NULL,
  block_hash text NOT NULL,
  extrinsic_hash text,
  uid int NOT NULL,
  hotkey text NOT NULL,
  commit_payload jsonb,
  model_uri text,
  payload_hash text NOT NULL,
  submission_id uuid REFERENCES model_submissions (id) DEFERRABLE INITIALLY DEFERRED,
  ignored_reason text,
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (netuid, hotkey, payload_hash)
);
CREATE UNIQUE INDEX chain_commits_extrinsic_key ON chain_commits (netuid, extrinsic_hash) WHERE extrinsic_hash IS NOT NULL;
CREATE INDEX chain_commits_block_idx ON chain_commits (netuid, block_number);
ALTER TABLE model_submissions ADD CONSTRAINT model_submissions_chain_commit_fk
  FOREIGN KEY (chain_commit_id) REFERENCES chain_commits (id) DEFERRABLE INITIALLY DEFERRED;

CREATE TABLE miners (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  hotkey text UNIQUE NOT NULL,
  coldkey text,
  uid int,
  netuid int NOT NULL,
  registration_block bigint,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE used_hotkeys (
  hotkey text PRIMARY KEY,
  netuid int NOT NULL,
  block_number bigint,
  submission_id uuid,
  raw_payload text,
  source text NOT NULL CHECK (source IN ('backfill','swap','eval')),
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE hotkey_bans (
  hotkey text NOT NULL,
  netuid int NOT NULL,
  kind text NOT NULL CHECK (kind IN ('strikes','duplicate','injection','low_vocab','operator')),
  submission_id uuid,
  reason text,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (hotkey, kind)
);

CREATE TABLE stage_attempts (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  submission_id uuid NOT NULL REFERENCES model_submissions (id),
  stage text NOT NULL CHECK (stage IN ('HIPPIUS','PRE_EVAL','EVAL','SET_REIGN','WEIGHT_SET')),
  attempt_number int NOT NULL,
  attempt_key text UNIQUE NOT NULL,
  state text NOT NULL CHECK (state IN ('RUNNING','SUCCEEDED','FAILED_RETRYABLE','FAILED_TERMINAL','ABANDONED')),
  worker_id text,
  lease_token uuid NOT NULL,
  lease_expires_at timestamptz NOT NULL,
  heartbeat_at timestamptz,
  deadline_at timestamptz NOT NULL,
  counts_against_budget bool NOT NULL DEFAULT true,
  remote_run_id text,
  -- (new) which process incarnation runs the work; a restarted process knows a foreign
  -- in-process executor is gone and reports executor_lost instead of re-running the side effect.
  executor_incarnation uuid,
  dispatched_at timestamptz,
  cancel_requested_at timestamptz,
  started_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  input_snapshot jsonb,
  result_summary jsonb,
  fault_class text,
  fault_code text,
  fault_message text,
  UNIQUE (submission_id, stage, attempt_number)
);
CREATE UNIQUE INDEX stage_attempts_one_running ON stage_attempts (submission_id, stage) WHERE state = 'RUNNING';
-- The sweeper scans only live attempts; a partial index keeps that scan proportional to the
-- number of RUNNING rows, not to history.
CREATE INDEX stage_attempts_running_lease ON stage_attempts (lease_expires_at) WHERE state = 'RUNNING';
CREATE INDEX stage_attempts_stage_running ON stage_attempts (stage) WHERE state = 'RUNNING';

-- Progress and terminal events of an attempt; `id` is the resumable cursor for watch().
CREATE TABLE stage_events (
  id bigserial PRIMARY KEY,
  attempt_key text NOT NULL REFERENCES stage_attempts (attempt_key),
  -- The reporter's own sequence number makes re-sent events (after a lost acknowledgement) no-ops.
  reporter_seq int NOT NULL,
  event_type text NOT NULL,
  data jsonb NOT NULL DEFAULT '{}',
  terminal bool NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (attempt_key, reporter_seq)
);

CREATE TABLE remote_gpu_hosts (
  id text PRIMARY KEY,
  role text NOT NULL CHECK (role IN ('PRE_EVAL','EVAL')),
  base_url text,
  tunnel_name text,
  state text NOT NULL CHECK (state IN ('READY','DEGRADED','DRAINING','OFFLINE')),
  gpu_count int NOT NULL DEFAULT 0,
  free_gpu_count int NOT NULL DEFAULT 0,
  accelerator_type text,
  capabilities jsonb NOT NULL DEFAULT '{}',
  max_concurrent int NOT NULL DEFAULT 1,
  last_heartbeat_at timestamptz,
  last_health jsonb
);

CREATE TABLE artifacts (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  submission_id uuid REFERENCES model_submissions (id),
  stage_attempt_id uuid REFERENCES stage_attempts (id),
  artifact_type text NOT NULL CHECK (artifact_type IN ('MODEL_MANIFEST','GUARD_DETECTION','VALIDATION_FAULT','SANITY_RESULT',
    'EVAL_REQUEST','EVAL_VERDICT','GENERATED_SAMPLES','EVAL_TRANSCRIPT','SCORING_RESULTS','JUDGE_RESULTS','REMOTE_LOGS',
    'REMOTE_PROGRESS','FINGERPRINT')),
  storage_backend text NOT NULL CHECK (storage_backend IN ('s3','hippius','hf','local-cache')),
  uri text NOT NULL,
  bucket text,
  object_key text,
  sha256 text,
  size_bytes bigint,
  content_type text,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX artifacts_submission_idx ON artifacts (submission_id, artifact_type, created_at DESC);

CREATE TABLE eval_runs (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  submission_id uuid NOT NULL REFERENCES model_submissions (id),
  stage_attempt_id uuid NOT NULL UNIQUE REFERENCES stage_attempts (id),
  king_submission_id uuid,
  king_model_hash text NOT NULL,
  challenger_model_hash text NOT NULL,
  remote_host_id text,
  remote_run_id text,
  state text NOT NULL CHECK (state IN ('DISPATCHED','GENERATING','SCORING','VERDICT_READY','SUCCEEDED','FAILED_RETRYABLE','FAILED_TERMINAL')),
  gpu_count int, gpu_ids text[], gpu_topology jsonb,
  dataset_version text, dataset_manifest_hash text, dataset_sample_seed text, dataset_sample_ids text[],
  dataset_max_turns_per_sample int, dataset_sampling_algo text,
  judge_config_hash text, judge_count int, sample_count int, generated_sample_count int, scored_sample_count int,
  score_challenger numeric, score_king numeric, win_margin numeric, win_lcb numeric, win_policy text,
  challenger_won bool,
  valid_turns int, total_turns int, king_vllm_errors int, chal_vllm_errors int, judge_errors int,
  protocol_version text NOT NULL DEFAULT 'v1',
  fault_class text, fault_code text, fault_message text,
  started_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz
);
-- At most one active eval globally (spec §8): the next duel must face a settled king.
CREATE UNIQUE INDEX eval_runs_one_active ON eval_runs ((true)) WHERE state IN ('DISPATCHED','GENERATING','SCORING','VERDICT_READY');

CREATE TABLE king_versions (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  submission_id uuid NOT NULL REFERENCES model_submissions (id),
  model_hash text NOT NULL,
  artifact_id uuid NOT NULL REFERENCES artifacts (id),
  eval_run_id uuid REFERENCES eval_runs (id),
  version bigint UNIQUE NOT NULL,
  entered_reign_id uuid,
  entered_slot int CHECK (entered_slot BETWEEN 1 AND 5),
  retired_at timestamptz,
  retire_reason text CHECK (retire_reason IN ('SHIFTED_OUT','REPLACED_DUPLICATE')),
  activated_at timestamptz,
  activated_by text
);

CREATE TABLE reigns (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  version bigint UNIQUE NOT NULL,
  reason text NOT NULL CHECK (reason IN ('GENESIS','CORONATION','SERVICE_REPLAY')),
  trigger_eval_run_id uuid,
  trigger_submission_id uuid,
  previous_reign_id uuid REFERENCES reigns (id),
  state text NOT NULL CHECK (state IN ('ACTIVE','SUPERSEDED','REPAIRING')),
  created_at timestamptz NOT NULL DEFAULT now(),
  activated_at timestamptz
);
CREATE UNIQUE INDEX reigns_one_active ON reigns ((true)) WHERE state = 'ACTIVE';

CREATE TABLE reign_members (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  reign_id uuid NOT NULL REFERENCES reigns (id),
  slot int NOT NULL CHECK (slot BETWEEN 1 AND 5),
  king_version_id uuid NOT NULL REFERENCES king_versions (id),
  submission_id uuid NOT NULL,
  hotkey text NOT NULL,
  uid int,
  model_hash text NOT NULL,
  weight_bps int NOT NULL,
  entered_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (reign_id, slot),
  UNIQUE (reign_id, king_version_id)
);

CREATE TABLE weight_epochs (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  netuid int NOT NULL,
  reason text NOT NULL CHECK (reason IN ('CORONATION','PERIODIC_REFRESH','SERVICE_REPLAY')),
  reign_id uuid REFERENCES reigns (id),
  state text NOT NULL CHECK (state IN ('PENDING','RUNNING','SUCCESS','FAILED_RETRYABLE','FAILED_TERMINAL')),
  uids int[] NOT NULL,
  weights numeric[] NOT NULL,
  weight_policy jsonb NOT NULL,
  weight_hash text NOT NULL,
  attempt_count int NOT NULL DEFAULT 0,
  last_fault_class text,
  last_fault_code text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  succeeded_at timestamptz,
  CHECK (cardinality(uids) = cardinality(weights)),
  UNIQUE (netuid, weight_hash)
);

CREATE TABLE weight_transactions (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  weight_epoch_id uuid NOT NULL REFERENCES weight_epochs (id),
  stage_attempt_id uuid REFERENCES stage_attempts (id),
  wallet_hotkey text,
  subtensor_url text,
  state text NOT NULL CHECK (state IN ('CREATED','SUBMITTED','SUCCESS','FAILED_RETRYABLE','FAILED_TERMINAL')),
  extrinsic_hash text,
  claim_block bigint,
  block_number bigint,
  fault_class text, fault_code text, fault_message text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE events (
  id bigserial PRIMARY KEY,
  submission_id uuid,
  stage_attempt_id uuid,
  event_type text NOT NULL,
  severity text NOT NULL CHECK (severity IN ('DEBUG','INFO','WARN','ERROR')),
  message text,
  data jsonb,
  -- (new) makes every event write idempotent: a transition replayed after a crash cannot log twice.
  dedup_key text UNIQUE,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_submission_idx ON events (submission_id, id);

CREATE TABLE sanity_results (
  id bigserial PRIMARY KEY,
  model_uri text NOT NULL,
  digest text NOT NULL,
  submission_id uuid,
  attempt_id uuid,
  passed bool NOT NULL,
  fault_code text,
  heuristic_code text,
  reason text,
  responses jsonb,
  timing jsonb,
  checked_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (digest, attempt_id)
);

CREATE TABLE model_fingerprints (
  model_uri text PRIMARY KEY,
  hotkey text,
  coldkey text,
  digest text,
  weights_hash text,
  dim int,
  norm_vector float8[],
  fingerprint jsonb,
  created_at timestamptz NOT NULL DEFAULT now()
);
