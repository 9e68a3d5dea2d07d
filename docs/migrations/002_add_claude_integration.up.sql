-- Migration 002_add_claude_integration (up), exported by `npm run migrate:sql` from src/migrations/002_add_claude_integration.ts.
-- Run it as one script (for example in the Supabase SQL Editor).
-- Run by hand, it is not recorded in x402_migrations.kysely_migration.

BEGIN;

SET LOCAL lock_timeout = '2000ms';

SET LOCAL statement_timeout = '60000ms';

create table "x402_user_claude_configs" ("user_id" uuid primary key references "auth"."users" ("id") on delete cascade, "api_key_encrypted" text not null, "is_enabled" boolean default true, "created_at" timestamptz default now(), "updated_at" timestamptz default now());

create index "idx_claude_configs_user_enabled" on "x402_user_claude_configs" ("user_id", "is_enabled");

CREATE FUNCTION update_claude_config_updated_at() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
    BEGIN
      NEW.updated_at = now();
      RETURN NEW;
    END;
    $$;

CREATE TRIGGER claude_config_updated_at
    BEFORE UPDATE ON x402_user_claude_configs
    FOR EACH ROW EXECUTE FUNCTION update_claude_config_updated_at();

ALTER TABLE x402_user_claude_configs ENABLE ROW LEVEL SECURITY;

CREATE POLICY "Users can manage their own Claude config" ON x402_user_claude_configs
    FOR ALL
    USING (auth.uid() = user_id)
    WITH CHECK (auth.uid() = user_id);

CREATE POLICY "Service role full access" ON x402_user_claude_configs
    FOR ALL TO service_role
    USING (true);

COMMIT;
