"""Hypertension and type-2 diabetes management (慢病管理, 国家基本公共卫生服务规范 第三版): the
programme registries (from shared-record diagnoses or enrolled by a team), follow-ups with the
rules engine's decision, control status, lost-to-follow-up detection and long prescriptions
(长期处方管理规范（试行）2021).

Calls `record` (diagnoses), `registry`, `audit` and `identity.access`. Knows nothing about
family-doctor contracts: `familydoctor` sits above it and composes the two."""
