-- Dedup index (spec/validation.md §9, issue #5 items 4-5): what the Postgres backend needs on top
-- of model_fingerprints from 001.

-- Exact gate (§9 step 1) looks rows up by weights_hash; a plain btree, not unique: the same weights
-- under the same hotkey may legitimately be indexed twice (re-submission after a fault).
CREATE INDEX model_fingerprints_weights_hash_idx ON model_fingerprints (weights_hash);

-- The in-memory kNN matrix is built per dimension; loading one dimension scans this index.
CREATE INDEX model_fingerprints_dim_idx ON model_fingerprints (dim);

-- Same-coldkey sybil rule (§9.2) lists every model of a coldkey.
CREATE INDEX model_fingerprints_coldkey_idx ON model_fingerprints (coldkey) WHERE coldkey IS NOT NULL;

-- repo: the OpenSearch document carries it; kept so both backends store the same document.
ALTER TABLE model_fingerprints ADD COLUMN repo text;

-- Divergence samples under the corpus salt (§9.2): n_tensors × 256 float32, little-endian,
-- row-major in layer_keys order (≈ 3 MB for dim 3000; TOAST stores it out of line and compressed,
-- so kNN loads that never select it do not read it). samples_salt names the salt so a future salt
-- change can coexist; NULL samples = fingerprinted before divergence existed (the rule skips it).
ALTER TABLE model_fingerprints ADD COLUMN samples bytea;
ALTER TABLE model_fingerprints ADD COLUMN samples_salt text;
ALTER TABLE model_fingerprints ADD COLUMN n_tensors int;
ALTER TABLE model_fingerprints ADD CONSTRAINT model_fingerprints_samples_shape
  CHECK (samples IS NULL OR (n_tensors IS NOT NULL AND samples_salt IS NOT NULL AND octet_length(samples) = n_tensors * 256 * 4));

-- Change feed for the in-memory matrix: every insert or replacement takes a new seq, and readers
-- fetch rows above their watermark (minus a look-back window, because a smaller seq can commit
-- after a larger one). bigserial on an existing table numbers the existing rows too.
ALTER TABLE model_fingerprints ADD COLUMN seq bigserial;
CREATE UNIQUE INDEX model_fingerprints_seq_idx ON model_fingerprints (seq);
