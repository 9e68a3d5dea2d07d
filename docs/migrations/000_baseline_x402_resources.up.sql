-- Migration 000_baseline_x402_resources (up), exported by `npm run migrate:sql` from src/migrations/000_baseline_x402_resources.ts.
-- Run it as one script (for example in the Supabase SQL Editor).
-- Run by hand, it is not recorded in x402_migrations.kysely_migration.

BEGIN;

SET LOCAL lock_timeout = '2000ms';

SET LOCAL statement_timeout = '60000ms';

create table "x402_resources" ("id" uuid default gen_random_uuid() primary key, "name" text not null, "slug" text, "description" text, "resource_url" text not null, "normalized_url" text not null, "network" text not null, "pay_to" text not null, "resource_type" text default 'external' not null, "created_at" timestamptz default now() not null, "updated_at" timestamptz default now() not null, constraint "x402_resources_network_check" check (network = ANY (ARRAY['solana', 'base', 'ethereum', 'polygon', 'base-sepolia', 'ethereum-sepolia', 'solana-devnet'])), constraint "x402_resources_resource_type_check" check (resource_type = ANY (ARRAY['external', 'proxy', 'prompt', 'static'])));

COMMIT;
