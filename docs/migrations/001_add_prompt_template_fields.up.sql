-- Migration 001_add_prompt_template_fields (up), exported by `npm run migrate:sql` from src/migrations/001_add_prompt_template_fields.ts.
-- Run it as one script (for example in the Supabase SQL Editor).
-- Run by hand, it is not recorded in x402_migrations.kysely_migration.

BEGIN;

SET LOCAL lock_timeout = '2000ms';

SET LOCAL statement_timeout = '60000ms';

alter table "x402_resources" add column "pt_system_prompt" text, add column "pt_parameters" jsonb default '[]'::jsonb, add column "pt_model" varchar(100) default 'claude-sonnet-4-20250514', add column "pt_max_tokens" integer default 4096, add column "pt_allows_user_message" boolean default false;

alter table "x402_resources" add constraint "pt_max_tokens_range" check (pt_max_tokens IS NULL OR (pt_max_tokens >= 1 AND pt_max_tokens <= 8192));

alter table "x402_resources" drop constraint "x402_resources_resource_type_check";

alter table "x402_resources" add constraint "x402_resources_resource_type_check" check (resource_type = ANY (ARRAY['external', 'proxy', 'prompt', 'static', 'prompt_template']));

COMMIT;
