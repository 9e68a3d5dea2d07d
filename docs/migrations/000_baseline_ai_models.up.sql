-- Migration 000_baseline_ai_models (up), exported by `npm run migrate:sql` from src/migrations/000_baseline_ai_models.ts.
-- Run it as one script (for example in the Supabase SQL Editor).
-- Run by hand, it is not recorded in x402_migrations.kysely_migration.

BEGIN;

SET LOCAL lock_timeout = '2000ms';

SET LOCAL statement_timeout = '60000ms';

create table "ai_models" ("id" uuid default gen_random_uuid() primary key, "openrouter_id" text not null unique, "display_name" text not null, "provider" text not null, "context_length" integer, "pricing" jsonb, "is_active" boolean default true not null, "created_at" timestamptz default now() not null, "updated_at" timestamptz default now() not null);

COMMIT;
